//! The `[http]`, `[pipeline]`, `[delivery]`, `[shutdown]`, `[log]` and `[enrich]` sections:
//! the operations server, processing limits, the delivery guarantee, draining, logging and
//! remote enrichment.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{RemoteConfig, defaults};

/// Enrichment settings beyond `pipeline.enricher`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnrichConfig {
    /// A remote model server; the local engine (`pipeline.enricher`) stays the fallback.
    #[serde(default)]
    pub remote: Option<RemoteConfig>,
}

/// The operations HTTP server.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address of `/metrics`, `/healthz`, `/readyz`; port 0 picks a free port.
    #[serde(default = "defaults::listen")]
    pub listen: SocketAddr,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: defaults::listen(),
        }
    }
}

/// Which enrichment engine to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EnricherKind {
    /// The trained in-process models.
    Local,
    /// Capitalised spans and a small lexicon (for comparison and tiny images).
    Baseline,
}

/// Processing settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Messages read but not yet acknowledged, across all partitions.
    #[serde(default = "defaults::max_in_flight")]
    pub max_in_flight: usize,
    /// Bytes in flight, charged as three copies of each record's value (input, event,
    /// producer copy) plus 4 KiB; with `max_in_flight` it bounds the worker's memory. A
    /// record larger than the whole budget is admitted alone.
    #[serde(default = "defaults::max_in_flight_bytes")]
    pub max_in_flight_bytes: usize,
    /// Larger values are dead-lettered (truncated to this size).
    #[serde(default = "defaults::max_message_bytes")]
    pub max_message_bytes: usize,
    /// A record still processing this long after a thread started on it is dead-lettered
    /// as `timeout`; its partition moves on.
    #[serde(default = "defaults::record_timeout_ms")]
    pub record_timeout_ms: u64,
    /// Progress watchdog: `/healthz` fails when records are in flight and none has been
    /// acknowledged for this long (0 turns it off). Set it above the longest broker
    /// outage the worker should ride out without a restart.
    #[serde(default = "defaults::stall_timeout_ms")]
    pub stall_timeout_ms: u64,
    /// Threads that enrich in parallel; 0 means one per core.
    #[serde(default)]
    pub workers: usize,
    #[serde(default = "defaults::enricher")]
    pub enricher: EnricherKind,
    /// First back-off after a transient failure; doubles up to `retry_backoff_max_ms`.
    #[serde(default = "defaults::retry_backoff_initial_ms")]
    pub retry_backoff_initial_ms: u64,
    #[serde(default = "defaults::retry_backoff_max_ms")]
    pub retry_backoff_max_ms: u64,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            max_in_flight: defaults::max_in_flight(),
            max_in_flight_bytes: defaults::max_in_flight_bytes(),
            max_message_bytes: defaults::max_message_bytes(),
            record_timeout_ms: defaults::record_timeout_ms(),
            stall_timeout_ms: defaults::stall_timeout_ms(),
            workers: 0,
            enricher: defaults::enricher(),
            retry_backoff_initial_ms: defaults::retry_backoff_initial_ms(),
            retry_backoff_max_ms: defaults::retry_backoff_max_ms(),
        }
    }
}

impl PipelineConfig {
    /// The number of enrichment threads to run.
    pub fn worker_threads(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }
}

/// What a consumer of the output topic can rely on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryGuarantee {
    /// Every input comes out at least once; after a crash the events produced since the
    /// last commit come out again (same `event_id`).
    AtLeastOnce,
    /// Events, dead-letter records and input offsets are committed together in Kafka
    /// transactions: each input comes out once for `read_committed` readers.
    ExactlyOnce,
}

/// The delivery guarantee and, in exactly-once mode, its transactions.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    #[serde(default = "defaults::guarantee")]
    pub guarantee: DeliveryGuarantee,
    /// Exactly-once: how often the open transaction is committed (Kafka Streams uses 100 ms).
    /// Longer means fewer, larger transactions and later visibility to readers.
    #[serde(default = "defaults::transaction_interval_ms")]
    pub transaction_interval_ms: u64,
    /// Exactly-once: the broker aborts a transaction left open this long (a crashed worker's).
    #[serde(default = "defaults::transaction_timeout_ms")]
    pub transaction_timeout_ms: u64,
    /// Exactly-once: the producer's `transactional.id`. Default
    /// `newsflow-<group>-<kafka.group_instance_id, else $HOSTNAME>`: stable across restarts
    /// of one pod, unique per worker.
    #[serde(default)]
    pub transactional_id: Option<String>,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            guarantee: defaults::guarantee(),
            transaction_interval_ms: defaults::transaction_interval_ms(),
            transaction_timeout_ms: defaults::transaction_timeout_ms(),
            transactional_id: None,
        }
    }
}

impl DeliveryConfig {
    pub fn exactly_once(&self) -> bool {
        self.guarantee == DeliveryGuarantee::ExactlyOnce
    }

    /// The transactional id for a worker of `group`: the configured one, else one made from
    /// the group and `member` (the static member id or host name). A run in another group
    /// than `live_group` (a replay) appends its group to a configured id, so it never shares,
    /// and fences, the live workers' id.
    pub fn transactional_id(&self, group: &str, live_group: &str, member: Option<&str>) -> String {
        match (&self.transactional_id, member) {
            (Some(id), _) if group == live_group => id.clone(),
            (Some(id), _) => format!("{id}-{group}"),
            (None, Some(m)) if !m.is_empty() => format!("newsflow-{group}-{m}"),
            (None, _) => format!("newsflow-{group}-{}", std::process::id()),
        }
    }
}

/// Graceful shutdown and rebalance draining.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownConfig {
    /// Time to finish in-flight work on SIGTERM or partition revoke before committing.
    #[serde(default = "defaults::drain_timeout_ms")]
    pub drain_timeout_ms: u64,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig {
            drain_timeout_ms: defaults::drain_timeout_ms(),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Logging.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    #[serde(default = "defaults::log_format")]
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `newsflow=debug,rdkafka=warn`.
    #[serde(default = "defaults::log_level")]
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: defaults::log_format(),
            level: defaults::log_level(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transactional_ids_differ_between_the_live_group_and_a_replay() {
        let mut d = DeliveryConfig::default();
        assert_eq!(
            d.transactional_id("live", "live", Some("pod-0")),
            "newsflow-live-pod-0"
        );
        assert_eq!(
            d.transactional_id("replay-1", "live", Some("pod-0")),
            "newsflow-replay-1-pod-0"
        );
        d.transactional_id = Some("mine".into());
        assert_eq!(d.transactional_id("live", "live", Some("pod-0")), "mine");
        assert_eq!(
            d.transactional_id("replay-1", "live", Some("pod-0")),
            "mine-replay-1"
        );
    }
}
