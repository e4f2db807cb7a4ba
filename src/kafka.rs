//! Shared Kafka client code: client configuration from [`Config`], the context that turns
//! librdkafka statistics into metrics, and the rebalance hooks that drain and commit
//! revoked partitions.

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tracing::{debug, error, info, warn};

use crate::config::Config;
use crate::events::{CommitCause, Committed, Rebalanced};
use crate::health::Health;
use crate::metrics::Metrics;
use crate::offsets::{SharedTracker, TopicPartition};

/// Which client a context belongs to (a metric label).
#[derive(Debug, Clone, Copy)]
pub enum ClientRole {
    Consumer,
    Producer,
}

impl ClientRole {
    fn as_str(self) -> &'static str {
        match self {
            ClientRole::Consumer => "consumer",
            ClientRole::Producer => "producer",
        }
    }
}

/// Commits the work of partitions being revoked some other way than a consumer offset
/// commit: in exactly-once mode, inside the open transaction.
pub trait RevokeCommitter: Send + Sync {
    /// Blocking; commits everything finished, the revoked partitions' positions included.
    fn commit_for_revoke(&self, revoked: &[TopicPartition]);
}

/// Context for newsflow's clients: statistics → metrics, errors → health, and (for the
/// consumer) drain-and-commit on revoke.
pub struct KafkaContext {
    role: ClientRole,
    metrics: Metrics,
    health: Arc<Health>,
    tracker: Arc<SharedTracker>,
    drain_timeout: Duration,
    /// Set in exactly-once mode, once the transactional producer is ready (weak: the
    /// committer holds the consumer).
    revoke_committer: OnceLock<Weak<dyn RevokeCommitter>>,
}

impl KafkaContext {
    pub fn new(
        role: ClientRole,
        metrics: Metrics,
        health: Arc<Health>,
        tracker: Arc<SharedTracker>,
        drain_timeout: Duration,
    ) -> Self {
        KafkaContext {
            role,
            metrics,
            health,
            tracker,
            drain_timeout,
            revoke_committer: OnceLock::new(),
        }
    }

    /// Revoked partitions are committed by `committer` from now on (exactly-once mode).
    pub fn set_revoke_committer(&self, committer: Weak<dyn RevokeCommitter>) {
        let _ = self.revoke_committer.set(committer);
    }

    fn record_broker_stats(&self, stats: &Statistics) {
        let client = self.role.as_str();
        let mut any_up = false;
        for broker in stats.brokers.values() {
            if broker.nodeid < 0 {
                continue; // bootstrap placeholder
            }
            let name = broker.nodeid.to_string();
            let up = broker.state == "UP";
            any_up |= up;
            self.metrics
                .kafka_broker_up
                .with_label_values(&[client, &name])
                .set(i64::from(up));
            if let Some(rtt) = &broker.rtt {
                for (q, v) in [("0.5", rtt.p50), ("0.99", rtt.p99)] {
                    self.metrics
                        .kafka_broker_rtt
                        .with_label_values(&[client, &name, q])
                        .set(v as f64 / 1e6);
                }
            }
        }
        self.metrics
            .kafka_queue_messages
            .with_label_values(&[client])
            .set(stats.msg_cnt as i64);
        self.metrics
            .kafka_reply_queue
            .with_label_values(&[client])
            .set(stats.replyq);
        if matches!(self.role, ClientRole::Consumer) {
            self.health.set_connected(any_up);
            self.metrics.ready.set(i64::from(self.health.is_ready()));
            if let Some(spell) = self.health.unassigned_to_report() {
                warn!(
                    unassigned_secs = spell.as_secs(),
                    "This group member has held no partitions for longer than \
                     kafka.unassigned_timeout_ms; /readyz answers 503 until it gets some"
                );
            }
        }
    }

    fn record_lag(&self, stats: &Statistics) {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let tracker = self.tracker.lock();
        for (topic_name, topic) in &stats.topics {
            for p in topic.partitions.values() {
                if p.partition < 0 {
                    continue;
                }
                let labels = [topic_name.as_str(), &p.partition.to_string()];
                if p.fetch_state == "none" || !p.desired {
                    let _ = self.metrics.consumer_lag.remove_label_values(&labels);
                    let _ = self
                        .metrics
                        .consumer_committed_lag
                        .remove_label_values(&labels);
                    let _ = self
                        .metrics
                        .consumer_lag_seconds
                        .remove_label_values(&labels);
                    continue;
                }
                let lag = Lag {
                    stored: p.consumer_lag_stored,
                    committed: p.consumer_lag,
                    low: p.lo_offset,
                    high: p.hi_offset,
                };
                let unfinished = lag.unfinished();
                if let Some(messages) = unfinished {
                    self.metrics
                        .consumer_lag
                        .with_label_values(&labels)
                        .set(messages);
                }
                if let Some(messages) = lag.uncommitted() {
                    self.metrics
                        .consumer_committed_lag
                        .with_label_values(&labels)
                        .set(messages);
                }
                let (oldest_pending, last_done) =
                    tracker.oldest_unfinished_ts(topic_name, p.partition);
                let age_ms = match (oldest_pending, last_done) {
                    (Some(ts), _) => now_ms - ts,
                    // Nothing in flight but records wait unread: they are at most as old as
                    // the time since the last record we finished was written.
                    (None, Some(ts)) if unfinished.is_some_and(|l| l > 0) => now_ms - ts,
                    _ => 0,
                };
                self.metrics
                    .consumer_lag_seconds
                    .with_label_values(&labels)
                    .set(age_ms.max(0) as f64 / 1000.0);
            }
        }
    }
}

/// A partition's lags as librdkafka's statistics give them (-1: not known).
struct Lag {
    /// End offset minus the last stored (finished) position.
    stored: i64,
    /// End offset minus the committed position.
    committed: i64,
    low: i64,
    high: i64,
}

impl Lag {
    /// Records not yet finished. Before this member stores its first position librdkafka
    /// reports -1; the worker then starts from the committed position, or from the start of
    /// the partition (`auto.offset.reset=earliest`) when the group has none, so the lag is
    /// known as soon as the end offset is.
    fn unfinished(&self) -> Option<i64> {
        if self.stored >= 0 {
            Some(self.stored)
        } else {
            self.uncommitted()
        }
    }

    /// Records past the group's committed position (all of the partition when none).
    fn uncommitted(&self) -> Option<i64> {
        if self.committed >= 0 {
            Some(self.committed)
        } else if self.high >= 0 && self.low >= 0 {
            Some(self.high - self.low)
        } else {
            None
        }
    }
}

impl ClientContext for KafkaContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                error!(client = self.role.as_str(), facility = fac, "{message}")
            }
            RDKafkaLogLevel::Warning => {
                warn!(client = self.role.as_str(), facility = fac, "{message}")
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                info!(client = self.role.as_str(), facility = fac, "{message}")
            }
            RDKafkaLogLevel::Debug => {
                debug!(client = self.role.as_str(), facility = fac, "{message}")
            }
        }
    }

    fn stats(&self, stats: Statistics) {
        self.record_broker_stats(&stats);
        if matches!(self.role, ClientRole::Consumer) {
            self.record_lag(&stats);
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if matches!(
            error.rdkafka_error_code(),
            Some(rdkafka::types::RDKafkaErrorCode::Fatal)
        ) {
            // The idempotent producer cannot keep its ordering guarantees any more; every
            // later produce() fails. Stop, so the orchestrator restarts a clean client.
            error!(client = self.role.as_str(), error = %error, reason, "Fatal Kafka client error; stopping");
            self.health
                .set_fatal(format!("fatal {} error: {reason}", self.role.as_str()));
            self.metrics.ready.set(0);
            return;
        }
        if matches!(
            error.rdkafka_error_code(),
            Some(rdkafka::types::RDKafkaErrorCode::AllBrokersDown)
        ) && matches!(self.role, ClientRole::Consumer)
        {
            self.health.set_connected(false);
            self.metrics.ready.set(0);
        }
        warn!(client = self.role.as_str(), error = %error, reason, "Kafka client error");
    }
}

impl ConsumerContext for KafkaContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                let revoked: Vec<TopicPartition> = tpl
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition()))
                    .collect();
                let left = self.tracker.wait_drained(&revoked, self.drain_timeout);
                if left > 0 {
                    warn!(
                        in_flight = left,
                        "Drain deadline passed on revoke; unfinished records will be redelivered"
                    );
                }
                if let Some(committer) = self.revoke_committer.get().and_then(Weak::upgrade) {
                    crate::runtime::blocking(|| committer.commit_for_revoke(&revoked));
                    let mut tracker = self.tracker.lock();
                    for (topic, partition) in &revoked {
                        tracker.remove(topic, *partition);
                    }
                    drop(tracker);
                    Rebalanced::Revoked.emit(&self.metrics, &revoked);
                    return;
                }
                let mut commit = TopicPartitionList::new();
                {
                    let mut tracker = self.tracker.lock();
                    for (topic, partition) in &revoked {
                        if let Some(pos) = tracker.commit_position(topic, *partition) {
                            let _ =
                                commit.add_partition_offset(topic, *partition, Offset::Offset(pos));
                        }
                        tracker.remove(topic, *partition);
                    }
                }
                if commit.count() > 0 {
                    Committed {
                        cause: CommitCause::Revoke,
                        partitions: commit.count(),
                        result: consumer
                            .commit(&commit, CommitMode::Sync)
                            .as_ref()
                            .map(|_| ()),
                    }
                    .emit(&self.metrics);
                }
                Rebalanced::Revoked.emit(&self.metrics, &revoked);
            }
            // Logged and counted once the assignment took effect (post_rebalance).
            Rebalance::Assign(_) => {}
            Rebalance::Error(e) => warn!(error = %e, "Rebalance error"),
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            // librdkafka keeps a partition's pause across a revoke and a new assignment: a
            // partition the read task paused (in-flight budget used up) and lost (session
            // timeout during a broker outage) came back paused and was never read again.
            // A new assignment starts unpaused; the read task pauses it again if its budget
            // is still used up.
            let _ = consumer.resume(tpl);
            let assigned: Vec<TopicPartition> = tpl
                .elements()
                .iter()
                .map(|e| (e.topic().to_string(), e.partition()))
                .collect();
            Rebalanced::Assigned.emit(&self.metrics, &assigned);
        }
        let assigned = consumer.assignment().map(|a| a.count()).unwrap_or(0);
        self.metrics.assigned_partitions.set(assigned as i64);
        self.health.set_assigned(assigned);
    }
}

/// Settings shared by every client: servers, security, statistics.
fn base_config(config: &Config) -> ClientConfig {
    let k = &config.kafka;
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.bootstrap_servers)
        .set(
            "statistics.interval.ms",
            k.statistics_interval_ms.to_string(),
        )
        .set(
            "client.id",
            format!("newsflow-{}", env!("CARGO_PKG_VERSION")),
        );
    if let Some(p) = &k.security_protocol {
        c.set("security.protocol", p);
    }
    if let Some(m) = &k.sasl_mechanism {
        c.set("sasl.mechanisms", m);
    }
    if let Some(u) = &k.sasl_username {
        c.set("sasl.username", u);
    }
    if let Some(p) = &k.sasl_password {
        c.set("sasl.password", p.expose());
    }
    c.set_log_level(RDKafkaLogLevel::Warning);
    c
}

/// Consumer settings: manual offset storing, periodic commit of stored offsets only; in
/// exactly-once mode no consumer commits at all (offsets go into the transactions). Input
/// is read `read_committed` either way, so aborted upstream records are never processed.
pub fn consumer_config(config: &Config, group_id: &str) -> ClientConfig {
    let k = &config.kafka;
    let mut c = base_config(config);
    let auto_commit = !config.delivery.exactly_once();
    c.set("group.id", group_id)
        .set("enable.auto.offset.store", "false")
        .set("enable.auto.commit", auto_commit.to_string())
        .set("auto.commit.interval.ms", "1000")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("session.timeout.ms", k.session_timeout_ms.to_string())
        .set(
            "partition.assignment.strategy",
            &k.partition_assignment_strategy,
        );
    if let Some(id) = k.group_instance_id.as_deref().filter(|s| !s.is_empty()) {
        c.set("group.instance.id", id);
    }
    for (key, value) in &k.consumer_properties.0 {
        c.set(key, value);
    }
    c
}

/// Bytes a record batch and its record framing add to the key, value and headers that
/// librdkafka counts against `message.max.bytes` (61-byte batch header, varints, header
/// lengths), with room to spare: the broker counts them against the topic's limit.
const BATCH_FRAMING: usize = 512;

/// How long the start-up waits for the output topic's configuration.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The output topic's `max.message.bytes` as its broker describes it (DescribeConfigs), or
/// `None` when the broker does not report it (the caller then sizes for the largest event).
pub async fn topic_max_message_bytes(config: &Config, topic: &str) -> Option<usize> {
    let admin: AdminClient<DefaultClientContext> = match base_config(config).create() {
        Ok(a) => a,
        Err(e) => {
            warn!(error = %config.redact(&e.to_string()), "Cannot create an admin client to read topic limits");
            return None;
        }
    };
    // A broker answers in milliseconds; one without DescribeConfigs (librdkafka's mock
    // cluster) never answers, and the worker's start waits this long for nothing.
    let options = AdminOptions::new().request_timeout(Some(DESCRIBE_TIMEOUT));
    let described = admin
        .describe_configs(&[ResourceSpecifier::Topic(topic)], &options)
        .await;
    let value = match described.as_deref() {
        Ok([Ok(resource)]) => resource
            .get("max.message.bytes")
            .and_then(|e| e.value.as_deref())
            .and_then(|v| v.parse::<usize>().ok()),
        Ok([Err(code)]) => {
            warn!(topic, error = %code, "The broker did not describe the topic's configuration");
            None
        }
        Ok(_) => None,
        Err(e) => {
            warn!(topic, error = %e, "The broker did not describe the topic's configuration");
            None
        }
    };
    if value.is_none() {
        info!(
            topic,
            "The broker reports no max.message.bytes for the topic; events are sized for \
             pipeline.max_message_bytes and the broker has the last word"
        );
    }
    value
}

/// Producer settings: idempotent, acks from all replicas; with `transactional_id`,
/// transactional (exactly-once mode). `output_limit` is the output topic's
/// `max.message.bytes`: no event or batch is made larger than the topic takes, so the broker
/// never refuses a batch of good events for its size (an event alone too large is refused
/// at enqueue and dead-lettered by itself). Unknown, there is room for the largest event.
pub fn producer_config(
    config: &Config,
    transactional_id: Option<&str>,
    output_limit: Option<usize>,
) -> ClientConfig {
    let mut c = base_config(config);
    // message.timeout.ms=0: the idempotent producer retries transient failures itself, in
    // order, for as long as it takes; only permanent errors come back to newsflow, so a long
    // outage cannot reorder events that share a key. A transactional producer must give up
    // within the transaction timeout; the transaction is then aborted and redone.
    let message_timeout = match transactional_id {
        Some(_) => config.delivery.transaction_timeout_ms.to_string(),
        None => "0".to_string(),
    };
    c.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", message_timeout);
    if let Some(id) = transactional_id {
        c.set("transactional.id", id).set(
            "transaction.timeout.ms",
            config.delivery.transaction_timeout_ms.to_string(),
        );
    }
    for (key, value) in &config.kafka.producer_properties.0 {
        c.set(key, value);
    }
    let (max_bytes, batch_bytes) = producer_sizes(config, output_limit);
    c.set("message.max.bytes", max_bytes.to_string());
    if let Some(b) = batch_bytes {
        c.set("batch.size", b.to_string());
    }
    c
}

/// `message.max.bytes` and (with a known topic limit) `batch.size`: the configured values,
/// lowered to what the output topic takes.
fn producer_sizes(config: &Config, output_limit: Option<usize>) -> (usize, Option<usize>) {
    let configured = |key: &str| {
        config
            .kafka
            .producer_properties
            .0
            .get(key)
            .and_then(|v| v.parse::<usize>().ok())
    };
    // librdkafka's bounds: message.max.bytes ≥ 1000, batch.size ≥ 1.
    match output_limit {
        None => {
            let room = (config.pipeline.max_message_bytes * 4).max(1 << 20) + (64 << 10);
            (configured("message.max.bytes").unwrap_or(room), None)
        }
        Some(limit) => {
            let fits = limit.saturating_sub(BATCH_FRAMING).max(1000);
            let max_bytes = configured("message.max.bytes").map_or(fits, |m| m.min(fits));
            // librdkafka's default batch.size is 1,000,000 bytes.
            let batch = configured("batch.size").unwrap_or(1_000_000).min(fits);
            (max_bytes, Some(batch))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        let text = format!(
            "[kafka]\nbootstrap_servers = \"b:1\"\ngroup_id = \"g\"\n{extra}\n[topics]\n\
             input = \"in\"\noutput = \"out\"\ndead_letter = \"dlq\"\n"
        );
        Config::from_toml_str(&text, "t", Vec::new()).unwrap()
    }

    fn get(c: &ClientConfig, key: &str) -> Option<usize> {
        c.get(key).and_then(|v| v.parse().ok())
    }

    #[test]
    fn lag_is_known_as_soon_as_the_end_offset_is() {
        let lag = |stored, committed, low, high| {
            let l = Lag {
                stored,
                committed,
                low,
                high,
            };
            (l.unfinished(), l.uncommitted())
        };
        assert_eq!(lag(3, 7, 0, 10), (Some(3), Some(7)));
        // Nothing stored yet: from the committed position.
        assert_eq!(lag(-1, 7, 0, 10), (Some(7), Some(7)));
        // No committed position either: the whole partition, from its start.
        assert_eq!(lag(-1, -1, 4, 10), (Some(6), Some(6)));
        // No end offset yet.
        assert_eq!(lag(-1, -1, -1, -1), (None, None));
    }

    #[test]
    fn events_and_batches_fit_the_output_topic() {
        let c = producer_config(&config(""), None, Some(20_000));
        let max = get(&c, "message.max.bytes").unwrap();
        let batch = get(&c, "batch.size").unwrap();
        assert!(max + BATCH_FRAMING <= 20_000, "{max}");
        assert!(batch + BATCH_FRAMING <= 20_000, "{batch}");
        // A larger configured value is lowered; a smaller one is kept.
        let big = "[kafka.producer_properties]\n\"batch.size\" = \"5000000\"\n\
                   \"message.max.bytes\" = \"9000000\"";
        let c = producer_config(&config(big), None, Some(20_000));
        assert_eq!(get(&c, "message.max.bytes"), Some(max));
        assert_eq!(get(&c, "batch.size"), Some(batch));
        let small = "[kafka.producer_properties]\n\"batch.size\" = \"3000\"";
        let c = producer_config(&config(small), None, Some(20_000));
        assert_eq!(get(&c, "batch.size"), Some(3000));
    }

    #[test]
    fn without_a_known_limit_there_is_room_for_the_largest_event() {
        let c = producer_config(&config(""), None, None);
        assert!(get(&c, "message.max.bytes").unwrap() > 4 << 20);
        assert_eq!(c.get("batch.size"), None);
        let set = "[kafka.producer_properties]\n\"message.max.bytes\" = \"1000\"";
        let c = producer_config(&config(set), None, None);
        assert_eq!(get(&c, "message.max.bytes"), Some(1000));
    }
}
