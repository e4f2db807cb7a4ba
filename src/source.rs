//! Kafka in: the consumer, and the owned form of a record that travels through the
//! pipeline.

use std::sync::Arc;

use rdkafka::consumer::StreamConsumer;
use rdkafka::message::{Headers, Message, OwnedMessage};

use crate::config::Config;
use crate::health::Health;
use crate::kafka::{ClientRole, KafkaContext, consumer_config};
use crate::metrics::Metrics;
use crate::offsets::SharedTracker;

/// The consumer type every mode uses.
pub type Consumer = StreamConsumer<KafkaContext>;

/// Creates a consumer in `group_id` (subscription or assignment is up to the caller).
/// `bounded` runs (replays) also get end-of-partition events, to know when they are done.
pub fn create_consumer(
    config: &Config,
    group_id: &str,
    bounded: bool,
    metrics: &Metrics,
    health: &Arc<Health>,
    tracker: &Arc<SharedTracker>,
) -> rdkafka::error::KafkaResult<Consumer> {
    let context = KafkaContext::new(
        ClientRole::Consumer,
        metrics.clone(),
        health.clone(),
        tracker.clone(),
        std::time::Duration::from_millis(config.shutdown.drain_timeout_ms),
    );
    let mut client = consumer_config(config, group_id);
    if bounded {
        client.set("enable.partition.eof", "true");
    }
    client.create_with_context(context)
}

/// An input record, owned, with what the pipeline needs from it.
#[derive(Debug, Clone)]
pub struct InputRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// Record timestamp in milliseconds since the epoch, when the record has one.
    pub timestamp_ms: Option<i64>,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl InputRecord {
    /// Copies what the pipeline needs out of a consumed message.
    pub fn from_message(m: &OwnedMessage) -> Self {
        let headers = m
            .headers()
            .map(|hs| {
                hs.iter()
                    .map(|h| {
                        (
                            h.key.to_string(),
                            h.value.map(<[u8]>::to_vec).unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        InputRecord {
            topic: m.topic().to_string(),
            partition: m.partition(),
            offset: m.offset(),
            timestamp_ms: m.timestamp().to_millis(),
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
            headers,
        }
    }
}
