//! The `[kafka]` and `[topics]` sections: client settings shared by consumer and producer,
//! the librdkafka properties passed through (masked when shown), and topic names.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Secret, defaults, secret};

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
    /// A group member holding no partitions for this long turns `/readyz` 503 and logs it
    /// (a group that forgot it, or more members than partitions); 0 switches it off.
    #[serde(default = "defaults::unassigned_timeout_ms")]
    pub unassigned_timeout_ms: u64,
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
