//! Typed configuration: a TOML file, overridden by `NEWSFLOW__SECTION__KEY` environment
//! variables, checked at start-up. Unknown keys and invalid values fail with the key's name,
//! never with the value: a value may be a secret, and errors end up in logs. Secrets are
//! masked wherever the configuration is shown (see [`secret`]).

mod env;
pub mod secret;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use self::secret::{Secret, SecretUrl};
pub use crate::remote::config::{RemoteConfig, RemoteFallback, RemoteTask};

/// Prefix of environment-variable overrides.
pub const ENV_PREFIX: &str = "NEWSFLOW__";

/// A configuration error, naming the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// Only the position and the parser's message: the parser's own `Display` quotes the
    /// offending line, which may hold a secret.
    #[error("config file {path} is not valid TOML at line {line}, column {column}: {message}")]
    Syntax {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("config key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

/// librdkafka properties passed through. Values of secret-looking keys (passwords, keys,
/// tokens, `sasl.oauthbearer.config`) are masked in `Debug` and when serialized, and so are
/// credentials inside URL values.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Properties(pub BTreeMap<String, String>);

impl Properties {
    fn masked(&self) -> BTreeMap<&str, std::borrow::Cow<'_, str>> {
        self.0
            .iter()
            .map(|(k, v)| (k.as_str(), secret::mask_value(k, v)))
            .collect()
    }
}

impl fmt::Debug for Properties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.masked().fmt(f)
    }
}

impl Serialize for Properties {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.masked().serialize(s)
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub kafka: KafkaConfig,
    pub topics: TopicsConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub pipeline: PipelineConfig,
    #[serde(default)]
    pub shutdown: ShutdownConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub enrich: EnrichConfig,
}

/// Enrichment settings beyond `pipeline.enricher`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnrichConfig {
    /// A remote model server; the local engine (`pipeline.enricher`) stays the fallback.
    #[serde(default)]
    pub remote: Option<RemoteConfig>,
}

/// Kafka client settings shared by consumer and producer.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` list.
    pub bootstrap_servers: String,
    /// Consumer group of the live worker.
    pub group_id: String,
    /// Static membership id (`group.instance.id`); empty or absent for dynamic membership.
    #[serde(default)]
    pub group_instance_id: Option<String>,
    /// `cooperative-sticky` (default), `range` or `roundrobin`.
    #[serde(default = "defaults::assignor")]
    pub partition_assignment_strategy: String,
    #[serde(default = "defaults::session_timeout_ms")]
    pub session_timeout_ms: u64,
    /// librdkafka statistics interval, feeding the `newsflow_kafka_*` and lag metrics.
    #[serde(default = "defaults::statistics_interval_ms")]
    pub statistics_interval_ms: u64,
    /// `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`.
    #[serde(default)]
    pub security_protocol: Option<String>,
    #[serde(default)]
    pub sasl_mechanism: Option<String>,
    #[serde(default)]
    pub sasl_username: Option<String>,
    /// Never logged; prefer `NEWSFLOW__KAFKA__SASL_PASSWORD` from a secret store.
    #[serde(default)]
    pub sasl_password: Option<Secret>,
    /// Extra librdkafka consumer properties, passed through as given.
    #[serde(default)]
    pub consumer_properties: Properties,
    /// Extra librdkafka producer properties, passed through as given.
    #[serde(default)]
    pub producer_properties: Properties,
}

/// Topic names.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TopicsConfig {
    /// Raw articles are read from here (comma-separated for several topics).
    pub input: String,
    /// Enriched events are written here.
    pub output: String,
    /// Poison input is written here with its error in headers.
    pub dead_letter: String,
}

impl TopicsConfig {
    /// The input topics as a list.
    pub fn inputs(&self) -> Vec<&str> {
        self.input
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect()
    }
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

/// Every default in one place.
mod defaults {
    use super::{EnricherKind, LogFormat};
    use std::net::SocketAddr;

    pub fn assignor() -> String {
        "cooperative-sticky".into()
    }
    pub fn session_timeout_ms() -> u64 {
        45_000
    }
    pub fn statistics_interval_ms() -> u64 {
        5_000
    }
    pub fn listen() -> SocketAddr {
        SocketAddr::from(([0, 0, 0, 0], 9464))
    }
    pub fn max_in_flight() -> usize {
        512
    }
    pub fn max_message_bytes() -> usize {
        1 << 20
    }
    pub fn max_in_flight_bytes() -> usize {
        64 << 20
    }
    pub fn record_timeout_ms() -> u64 {
        5_000
    }
    pub fn stall_timeout_ms() -> u64 {
        300_000
    }
    pub fn enricher() -> EnricherKind {
        EnricherKind::Local
    }
    pub fn retry_backoff_initial_ms() -> u64 {
        100
    }
    pub fn retry_backoff_max_ms() -> u64 {
        10_000
    }
    pub fn drain_timeout_ms() -> u64 {
        10_000
    }
    pub fn log_format() -> LogFormat {
        LogFormat::Text
    }
    pub fn log_level() -> String {
        "info".into()
    }
}

impl Config {
    /// Loads `path`, applies the environment overrides in `env`, and checks the result.
    pub fn load(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml_str(&text, &path.display().to_string(), env)
    }

    /// Parses TOML text (named `origin` in errors), applies overrides and checks.
    pub fn from_toml_str(
        text: &str,
        origin: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let at = e.span().map_or(0, |span| span.start).min(text.len());
            let before = text.get(..at).unwrap_or("");
            ConfigError::Syntax {
                path: origin.to_string(),
                line: before.matches('\n').count() + 1,
                column: before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1,
                message: e.message().trim().to_string(),
            }
        })?;
        // Overrides given a number or boolean type by their look, as (key, override).
        let mut typed = Vec::new();
        for (name, value) in env {
            if let Some(rest) = name.strip_prefix(ENV_PREFIX)
                && let Some(key) = env::apply_override(&mut table, rest, &value, false)?
            {
                typed.push((key, rest.to_string(), value));
            }
        }
        // A value that looks like a number but lands in a string key (an all-digit group id)
        // becomes a string again and the config is read once more; each round turns back
        // one override, so this ends after at most `typed.len()` extra rounds.
        let config: Config = loop {
            match serde_path_to_error::deserialize(toml::Value::Table(table.clone())) {
                Ok(config) => break config,
                Err(e) => {
                    let key = e.path().to_string();
                    if let Some(i) = typed.iter().position(|(k, _, _)| *k == key) {
                        let (_, rest, value) = typed.swap_remove(i);
                        env::apply_override(&mut table, &rest, &value, true)?;
                        continue;
                    }
                    let message = secret::value_free(&key, &e.inner().to_string());
                    return Err(ConfigError::Invalid { key, message });
                }
            }
        };
        config.check()?;
        Ok(config)
    }

    /// Cross-field rules.
    fn check(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: &str| {
            Err(ConfigError::Invalid {
                key: key.into(),
                message: message.into(),
            })
        };
        if self.kafka.bootstrap_servers.trim().is_empty() {
            return invalid("kafka.bootstrap_servers", "must not be empty");
        }
        if self.kafka.group_id.trim().is_empty() {
            return invalid("kafka.group_id", "must not be empty");
        }
        if !["cooperative-sticky", "range", "roundrobin"]
            .contains(&self.kafka.partition_assignment_strategy.as_str())
        {
            return invalid(
                "kafka.partition_assignment_strategy",
                "must be cooperative-sticky, range or roundrobin",
            );
        }
        if self.kafka.session_timeout_ms < 1_000 {
            return invalid("kafka.session_timeout_ms", "must be at least 1000");
        }
        let inputs = self.topics.inputs();
        if inputs.is_empty() {
            return invalid("topics.input", "must name at least one topic");
        }
        for (key, topic) in [
            ("topics.output", &self.topics.output),
            ("topics.dead_letter", &self.topics.dead_letter),
        ] {
            if topic.trim().is_empty() {
                return invalid(key, "must not be empty");
            }
            if inputs.contains(&topic.as_str()) {
                return invalid(key, "must differ from topics.input");
            }
        }
        if self.topics.output == self.topics.dead_letter {
            return invalid("topics.dead_letter", "must differ from topics.output");
        }
        if self.pipeline.max_in_flight == 0 {
            return invalid("pipeline.max_in_flight", "must be at least 1");
        }
        if !(1..=100 << 20).contains(&self.pipeline.max_message_bytes) {
            return invalid(
                "pipeline.max_message_bytes",
                "must be between 1 and 104857600",
            );
        }
        if self.pipeline.retry_backoff_initial_ms == 0
            || self.pipeline.retry_backoff_max_ms < self.pipeline.retry_backoff_initial_ms
        {
            return invalid(
                "pipeline.retry_backoff_max_ms",
                "backoffs must be positive and max >= initial",
            );
        }
        if self.shutdown.drain_timeout_ms == 0 {
            return invalid("shutdown.drain_timeout_ms", "must be positive");
        }
        if self.shutdown.drain_timeout_ms >= self.kafka.session_timeout_ms {
            return invalid(
                "shutdown.drain_timeout_ms",
                "must be below kafka.session_timeout_ms, or revoked partitions are lost mid-drain",
            );
        }
        // Keys that would silently switch off at-least-once delivery or ordering.
        for (table, props, reserved) in [
            (
                "kafka.consumer_properties",
                &self.kafka.consumer_properties,
                &[
                    "enable.auto.offset.store",
                    "group.id",
                    "group.instance.id",
                    "enable.partition.eof",
                ][..],
            ),
            (
                "kafka.producer_properties",
                &self.kafka.producer_properties,
                &[
                    "enable.idempotence",
                    "acks",
                    "request.required.acks",
                    "message.timeout.ms",
                ][..],
            ),
        ] {
            if let Some(key) = props.0.keys().find(|k| reserved.contains(&k.as_str())) {
                return Err(ConfigError::Invalid {
                    key: format!("{table}.{key}"),
                    message: "newsflow sets this itself for at-least-once delivery and ordering \
                              (use kafka.group_id / kafka.group_instance_id for the group)"
                        .into(),
                });
            }
        }
        if let Some(r) = &self.enrich.remote {
            let url_ok = ::url::Url::parse(r.url.expose())
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
            if !url_ok {
                return invalid("enrich.remote.url", "must be an http(s) URL");
            }
            if r.max_concurrency == 0 {
                return invalid("enrich.remote.max_concurrency", "must be at least 1");
            }
            if r.batch_size == 0 {
                return invalid("enrich.remote.batch_size", "must be at least 1");
            }
            if r.max_chunk_chars < 100 {
                return invalid("enrich.remote.max_chunk_chars", "must be at least 100");
            }
            if r.timeout_ms == 0 || r.article_budget_ms < r.timeout_ms {
                return invalid(
                    "enrich.remote.article_budget_ms",
                    "timeouts must be positive and the article budget at least one request timeout",
                );
            }
            if r.breaker_failures == 0 {
                return invalid("enrich.remote.breaker_failures", "must be at least 1");
            }
            // Durations go into clock arithmetic; anything longer is a mistake anyway.
            if r.article_budget_ms > 600_000 {
                return invalid(
                    "enrich.remote.article_budget_ms",
                    "must be at most 600000 (10 minutes)",
                );
            }
            if r.breaker_open_ms > 86_400_000 {
                return invalid(
                    "enrich.remote.breaker_open_ms",
                    "must be at most 86400000 (a day)",
                );
            }
            if r.max_response_bytes() < 64 << 10 {
                return invalid(
                    "enrich.remote.response_budget_bytes",
                    "must leave at least 65536 bytes per request in flight \
                     (response_budget_bytes / max_concurrency)",
                );
            }
            for (label, mapped) in &r.label_map {
                let ok = [
                    "PER", "ORG", "LOC", "MISC", "positive", "negative", "neutral",
                ]
                .contains(&mapped.as_str());
                if !ok {
                    return Err(ConfigError::Invalid {
                        key: format!("enrich.remote.label_map.{label}"),
                        message: "must map to PER, ORG, LOC, MISC, positive, negative or neutral"
                            .into(),
                    });
                }
            }
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level).map_err(|e| {
            ConfigError::Invalid {
                key: "log.level".into(),
                message: e.to_string(),
            }
        })?;
        Ok(())
    }

    /// The effective config as TOML, with every secret masked.
    pub fn to_masked_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}"))
    }

    /// `text` (a client library's error or log line, which may quote a setting it was
    /// given) with every secret value of this config replaced by `***`: the SASL password,
    /// secret-looking librdkafka properties, and credentials inside URL values.
    pub fn redact(&self, text: &str) -> String {
        let k = &self.kafka;
        let mut secrets: Vec<String> = k
            .sasl_password
            .iter()
            .map(|p| p.expose().to_string())
            .collect();
        let properties = k.consumer_properties.0.iter();
        for (key, value) in properties.chain(&k.producer_properties.0) {
            if secret::is_secret_name(key) {
                secrets.push(value.clone());
            } else {
                secrets.extend(secret::url_credentials(value));
            }
        }
        if let Some(r) = &self.enrich.remote {
            secrets.extend(secret::url_credentials(r.url.expose()));
        }
        // Longest first, so a secret that contains another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let mut text = text.to_string();
        for s in secrets.iter().filter(|s| !s.is_empty()) {
            text = text.replace(s.as_str(), secret::MASK);
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        [kafka]
        bootstrap_servers = "localhost:9092"
        group_id = "g"
        [topics]
        input = "in"
        output = "out"
        dead_letter = "dlq"
    "#;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = Config::from_toml_str(MINIMAL, "t", env(&[])).unwrap();
        assert_eq!(c.pipeline.max_message_bytes, 1 << 20);
        assert_eq!(c.kafka.partition_assignment_strategy, "cooperative-sticky");
        assert_eq!(c.http.listen.port(), 9464);
    }

    #[test]
    fn environment_overrides_file_values_with_types() {
        let c = Config::from_toml_str(
            MINIMAL,
            "t",
            env(&[
                ("NEWSFLOW__PIPELINE__MAX_IN_FLIGHT", "7"),
                ("NEWSFLOW__KAFKA__BOOTSTRAP_SERVERS", "b:1"),
                (
                    "NEWSFLOW__KAFKA__CONSUMER_PROPERTIES__FETCH__MAX__BYTES",
                    "1000",
                ),
                ("OTHER", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.pipeline.max_in_flight, 7);
        assert_eq!(c.kafka.bootstrap_servers, "b:1");
        assert_eq!(c.kafka.consumer_properties.0["fetch.max.bytes"], "1000");
    }

    #[test]
    fn unknown_key_fails_naming_the_key() {
        let text = format!("{MINIMAL}\n[pipeline]\nmax_inflight = 3\n");
        let err = Config::from_toml_str(&text, "t", env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("pipeline") && err.contains("max_inflight"),
            "{err}"
        );
    }

    #[test]
    fn invalid_value_fails_naming_the_key() {
        let err = Config::from_toml_str(
            MINIMAL,
            "t",
            env(&[("NEWSFLOW__PIPELINE__MAX_IN_FLIGHT", "many")]),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "config key `pipeline.max_in_flight`: invalid type: string, expected usize"
        );
        let err = Config::from_toml_str(
            MINIMAL,
            "t",
            env(&[("NEWSFLOW__PIPELINE__MAX_IN_FLIGHT", "0")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("pipeline.max_in_flight"), "{err}");
    }

    #[test]
    fn passthrough_keys_that_break_at_least_once_are_rejected() {
        for (var, key) in [
            (
                "NEWSFLOW__KAFKA__CONSUMER_PROPERTIES__ENABLE__AUTO__OFFSET__STORE",
                "consumer_properties.enable.auto.offset.store",
            ),
            (
                "NEWSFLOW__KAFKA__PRODUCER_PROPERTIES__ACKS",
                "producer_properties.acks",
            ),
        ] {
            let err = Config::from_toml_str(MINIMAL, "t", env(&[(var, "1")]))
                .unwrap_err()
                .to_string();
            assert!(err.contains("_properties."), "{err}");
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn output_topic_must_differ_from_input() {
        let err = Config::from_toml_str(MINIMAL, "t", env(&[("NEWSFLOW__TOPICS__OUTPUT", "in")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("topics.output"), "{err}");
    }

    #[test]
    fn secrets_are_masked_everywhere() {
        let c = Config::from_toml_str(
            MINIMAL,
            "t",
            env(&[
                ("NEWSFLOW__KAFKA__SASL_PASSWORD", "hunter2"),
                (
                    "NEWSFLOW__KAFKA__PRODUCER_PROPERTIES__SSL__KEY__PASSWORD",
                    "hunter3",
                ),
            ]),
        )
        .unwrap();
        assert_eq!(c.kafka.sasl_password.as_ref().unwrap().expose(), "hunter2");
        let shown = format!("{} {:?}", c.to_masked_toml(), c);
        assert!(
            !shown.contains("hunter2") && !shown.contains("hunter3"),
            "{shown}"
        );
    }

    #[test]
    fn an_all_digit_password_from_the_environment_stays_a_string_and_is_never_shown() {
        let c = Config::from_toml_str(
            MINIMAL,
            "t",
            env(&[
                ("NEWSFLOW__KAFKA__SASL_PASSWORD", "0123456789"),
                ("NEWSFLOW__KAFKA__GROUP_ID", "4242"),
                ("NEWSFLOW__KAFKA__GROUP_INSTANCE_ID", "true"),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.kafka.sasl_password.as_ref().unwrap().expose(),
            "0123456789"
        );
        // Numbers in string keys are strings too, whatever they look like.
        assert_eq!(c.kafka.group_id, "4242");
        assert_eq!(c.kafka.group_instance_id.as_deref(), Some("true"));
        let shown = format!("{} {:?}", c.to_masked_toml(), c);
        assert!(!shown.contains("0123456789"), "{shown}");
        // A number in a numeric key is still a number.
        let c = Config::from_toml_str(
            MINIMAL,
            "t",
            env(&[("NEWSFLOW__PIPELINE__MAX_IN_FLIGHT", "9")]),
        )
        .unwrap();
        assert_eq!(c.pipeline.max_in_flight, 9);
    }

    #[test]
    fn oauthbearer_config_and_url_credentials_are_masked() {
        let text = format!(
            "{MINIMAL}
            [kafka.consumer_properties]
            \"sasl.oauthbearer.config\" = \"clientId=me clientSecret=s3cr3t-1\"
            \"sasl.oauthbearer.token.endpoint.url\" = \"https://me:s3cr3t-2@idp.example.com/token\"
            [enrich.remote]
            url = \"https://user:s3cr3t-3@models.example.com/ner?api_key=s3cr3t-4&region=eu\"
            task = \"token-classification\"
            "
        );
        let c = Config::from_toml_str(&text, "t", env(&[])).unwrap();
        let shown = format!("{}\n{:?}", c.to_masked_toml(), c);
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("models.example.com/ner"), "{shown}");
        assert!(shown.contains("region=eu"), "{shown}");
        assert_eq!(
            c.kafka.consumer_properties.0["sasl.oauthbearer.config"],
            "clientId=me clientSecret=s3cr3t-1"
        );
        let remote = c.enrich.remote.unwrap();
        assert!(remote.url.expose().contains("s3cr3t-3"));
    }

    #[test]
    fn errors_never_echo_a_value() {
        let cases = [
            // A value of the wrong type, for a plain key and a secret one.
            (
                MINIMAL.to_string(),
                ("NEWSFLOW__PIPELINE__MAX_IN_FLIGHT", "s3cr3t"),
            ),
            (
                format!(
                    "{MINIMAL}\n[enrich.remote]\nurl = \"https://u:s3cr3t@h/\"\ntask = \"s3cr3t\"\n"
                ),
                ("OTHER", ""),
            ),
            (
                format!(
                    "{MINIMAL}\n[enrich.remote]\nurl = \"ftp://u:s3cr3t@h/\"\ntask = \"text-classification\"\n"
                ),
                ("OTHER", ""),
            ),
            (
                MINIMAL.replace(
                    "group_id = \"g\"",
                    "group_id = \"g\"\nsasl_password = [\"s3cr3t\"]",
                ),
                ("OTHER", ""),
            ),
            // A syntax error on a line holding a secret.
            (
                MINIMAL.replace(
                    "group_id = \"g\"",
                    "group_id = \"g\"\nsasl_password = \"s3cr3t",
                ),
                ("OTHER", ""),
            ),
        ];
        for (text, var) in cases {
            let err = Config::from_toml_str(&text, "t", env(&[var])).unwrap_err();
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains("s3cr3t"), "{shown}");
        }
    }

    #[test]
    fn redact_masks_every_secret_value_in_library_text() {
        let text = format!(
            "{MINIMAL}
            [kafka.producer_properties]
            \"sasl.oauthbearer.config\" = \"clientSecret=s3cr3t-1\"
            [enrich.remote]
            url = \"https://user:s3cr3t-3@h.example/?token=s3cr3t-4\"
            task = \"token-classification\"
            "
        );
        let c = Config::from_toml_str(
            &text,
            "t",
            env(&[("NEWSFLOW__KAFKA__SASL_PASSWORD", "s3cr3t-2")]),
        )
        .unwrap();
        let said = "Invalid value \"clientSecret=s3cr3t-1\" for configuration property \
                    \"sasl.oauthbearer.config\"; password s3cr3t-2; s3cr3t-3 s3cr3t-4";
        let shown = c.redact(said);
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("sasl.oauthbearer.config"), "{shown}");
    }

    #[test]
    fn remote_durations_and_response_budget_are_bounded() {
        let remote = |extra: &str| {
            format!(
                "{MINIMAL}\n[enrich.remote]\nurl = \"http://h/\"\ntask = \"text-classification\"\n{extra}\n"
            )
        };
        let c = Config::from_toml_str(&remote(""), "t", env(&[])).unwrap();
        assert_eq!(c.enrich.remote.unwrap().max_response_bytes(), 1 << 20);
        for (extra, key) in [
            (
                "article_budget_ms = 9223372036854775807",
                "article_budget_ms",
            ),
            ("breaker_open_ms = 9223372036854775807", "breaker_open_ms"),
            (
                "response_budget_bytes = 1048576\nmax_concurrency = 32",
                "response_budget_bytes",
            ),
        ] {
            let err = Config::from_toml_str(&remote(extra), "t", env(&[]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{extra}: {err}");
        }
    }

    #[test]
    fn shipped_config_files_are_valid() {
        for file in ["config/default.toml", "config/local.toml"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
            Config::load(&path, env(&[])).unwrap_or_else(|e| panic!("{file}: {e}"));
        }
    }
}
