//! Cross-field rules, checked once the configuration has been read: each failure names
//! the key at fault.

use super::{Config, ConfigError};

/// Longest accepted record deadline.
const MAX_TIMEOUT_MS: u64 = 600_000;

impl Config {
    /// Cross-field rules.
    pub(super) fn check(&self) -> Result<(), ConfigError> {
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
        if self.pipeline.max_in_flight_bytes == 0 {
            return invalid("pipeline.max_in_flight_bytes", "must be at least 1");
        }
        // The deadline is added to an Instant: an unbounded value would overflow it.
        if !(1..=MAX_TIMEOUT_MS).contains(&self.pipeline.record_timeout_ms) {
            return invalid(
                "pipeline.record_timeout_ms",
                "must be between 1 and 600000 (10 minutes)",
            );
        }
        if let Some(remote) = &self.enrich.remote
            && remote.article_budget_ms >= self.pipeline.record_timeout_ms
        {
            return invalid(
                "pipeline.record_timeout_ms",
                "must exceed enrich.remote.article_budget_ms, or a slow remote answer is \
                 dead-lettered as a timeout instead of falling back",
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
        let d = &self.delivery;
        if !(10..=60_000).contains(&d.transaction_interval_ms) {
            return invalid(
                "delivery.transaction_interval_ms",
                "must be between 10 and 60000",
            );
        }
        // librdkafka's own bounds; a commit must fit well inside the broker's timeout.
        if !(1_000..=900_000).contains(&d.transaction_timeout_ms)
            || d.transaction_timeout_ms <= d.transaction_interval_ms
        {
            return invalid(
                "delivery.transaction_timeout_ms",
                "must be between 1000 and 900000 and above delivery.transaction_interval_ms",
            );
        }
        if d.transactional_id
            .as_deref()
            .is_some_and(|id| id.trim().is_empty())
        {
            return invalid("delivery.transactional_id", "must not be empty when set");
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
                    "enable.auto.commit",
                    "isolation.level",
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
                    // librdkafka's alias of message.timeout.ms.
                    "delivery.timeout.ms",
                    "transactional.id",
                    "transaction.timeout.ms",
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
}

#[cfg(test)]
mod tests {
    use super::super::tests::{MINIMAL, env};
    use super::*;

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
            (
                "NEWSFLOW__KAFKA__PRODUCER_PROPERTIES__DELIVERY__TIMEOUT__MS",
                "producer_properties.delivery.timeout.ms",
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
    fn record_deadline_is_bounded_and_above_the_remote_budget() {
        for value in ["0", "600001", "18446744073709551615"] {
            let err = Config::from_toml_str(
                MINIMAL,
                "t",
                env(&[("NEWSFLOW__PIPELINE__RECORD_TIMEOUT_MS", value)]),
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains("pipeline.record_timeout_ms"), "{value}: {err}");
        }
        let remote = format!(
            "{MINIMAL}\n[enrich.remote]\nurl = \"http://h/\"\ntask = \"text-classification\"\n\
             article_budget_ms = 12000\n"
        );
        let err = Config::from_toml_str(&remote, "t", env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("article_budget_ms"), "{err}");
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
}
