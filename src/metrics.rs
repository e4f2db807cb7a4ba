//! Every metric the worker exports, in one struct registered into an explicit registry.
//! Label values come from small fixed sets (never article ids or raw error text).

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::enrich::EntityType;
use crate::pipeline::RejectReason;

/// The worker's metrics.
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub messages_consumed: IntCounterVec,
    pub events_produced: IntCounterVec,
    pub dead_lettered: IntCounterVec,
    pub processing_errors: IntCounterVec,
    pub stage_duration: HistogramVec,
    pub end_to_end_latency: Histogram,
    pub inflight: IntGauge,
    /// 1 while the read task has paused its partitions because the in-flight budget is used.
    pub backpressure_paused: IntGauge,
    pub consumer_lag: IntGaugeVec,
    pub consumer_committed_lag: IntGaugeVec,
    pub consumer_lag_seconds: GaugeVec,
    pub entities_extracted: IntCounterVec,
    pub sentiment_score: Histogram,
    pub rebalances: IntCounterVec,
    pub assigned_partitions: IntGauge,
    pub ready: IntGauge,
    pub build_info: IntGaugeVec,
    pub kafka_broker_up: IntGaugeVec,
    pub kafka_broker_rtt: GaugeVec,
    pub kafka_queue_messages: IntGaugeVec,
    pub kafka_reply_queue: IntGaugeVec,
    pub replay_remaining: IntGaugeVec,
    pub replay_rate: Gauge,
    pub remote_requests: IntCounterVec,
    pub remote_request_duration: Histogram,
    pub remote_circuit_state: IntGauge,
    pub remote_fallbacks: IntCounterVec,
    pub remote_inflight: IntGauge,
    /// Exactly-once mode: transactions by outcome (committed, aborted).
    pub transactions: IntCounterVec,
    pub transaction_duration: Histogram,
    pub transaction_records: Histogram,
    /// Exactly-once mode: the input position committed by the last transaction.
    pub transaction_committed_offset: IntGaugeVec,
}

fn histogram(
    r: &Registry,
    name: &str,
    help: &str,
    buckets: Vec<f64>,
) -> prometheus::Result<Histogram> {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))?;
    r.register(Box::new(h.clone()))?;
    Ok(h)
}

fn counter(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

fn int_gauge_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntGaugeVec> {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(g.clone()))?;
    Ok(g)
}

fn gauge_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<GaugeVec> {
    let g = GaugeVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(g.clone()))?;
    Ok(g)
}

fn int_gauge(r: &Registry, name: &str, help: &str) -> prometheus::Result<IntGauge> {
    let g = IntGauge::new(name, help)?;
    r.register(Box::new(g.clone()))?;
    Ok(g)
}

impl Metrics {
    /// Creates and registers every metric into a fresh registry.
    pub fn new() -> prometheus::Result<Self> {
        let r = Registry::new();
        let stage_duration = HistogramVec::new(
            HistogramOpts::new(
                "newsflow_stage_duration_seconds",
                "Time spent per article in each stage (parse, normalize, enrich, produce).",
            )
            .buckets(vec![
                0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
                0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["stage"],
        )?;
        r.register(Box::new(stage_duration.clone()))?;
        let end_to_end_latency = Histogram::with_opts(
            HistogramOpts::new(
                "newsflow_end_to_end_latency_seconds",
                "Record timestamp to output acknowledgement by the broker.",
            )
            .buckets(vec![
                0.002_5, 0.005, 0.007_5, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1,
                0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
            ]),
        )?;
        r.register(Box::new(end_to_end_latency.clone()))?;
        let sentiment_score = Histogram::with_opts(
            HistogramOpts::new(
                "newsflow_sentiment_score",
                "Document sentiment scores in [-1, 1].",
            )
            .buckets(vec![-0.75, -0.5, -0.25, -0.05, 0.05, 0.25, 0.5, 0.75, 1.0]),
        )?;
        r.register(Box::new(sentiment_score.clone()))?;
        let replay_rate = Gauge::new(
            "newsflow_replay_rate_messages_per_second",
            "Replay throughput over the last progress interval.",
        )?;
        r.register(Box::new(replay_rate.clone()))?;

        let remote_request_duration = Histogram::with_opts(
            HistogramOpts::new(
                "newsflow_remote_request_duration_seconds",
                "Duration of each HTTP request to the remote model.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
        )?;
        r.register(Box::new(remote_request_duration.clone()))?;
        let m = Metrics {
            messages_consumed: counter(
                &r,
                "newsflow_messages_consumed_total",
                "Records read from input topics.",
                &["topic"],
            )?,
            events_produced: counter(
                &r,
                "newsflow_events_produced_total",
                "Events acknowledged by the broker on the output topic.",
                &["topic"],
            )?,
            dead_lettered: counter(
                &r,
                "newsflow_messages_dead_lettered_total",
                "Records acknowledged on the dead-letter topic, by error class.",
                &["reason"],
            )?,
            processing_errors: counter(
                &r,
                "newsflow_processing_errors_total",
                "Transient errors that were retried (produce, commit, consume).",
                &["kind"],
            )?,
            stage_duration,
            end_to_end_latency,
            inflight: int_gauge(
                &r,
                "newsflow_inflight_messages",
                "Records read but not yet acknowledged.",
            )?,
            backpressure_paused: int_gauge(
                &r,
                "newsflow_backpressure_paused",
                "1 while partitions are paused because the in-flight budget is used up.",
            )?,
            consumer_lag: int_gauge_vec(
                &r,
                "newsflow_consumer_lag_messages",
                "High watermark minus stored offset, per partition.",
                &["topic", "partition"],
            )?,
            consumer_committed_lag: int_gauge_vec(
                &r,
                "newsflow_consumer_committed_lag_messages",
                "High watermark minus committed offset, per partition.",
                &["topic", "partition"],
            )?,
            consumer_lag_seconds: gauge_vec(
                &r,
                "newsflow_consumer_lag_seconds",
                "Age of the oldest unprocessed record, per partition (0 when caught up).",
                &["topic", "partition"],
            )?,
            entities_extracted: counter(
                &r,
                "newsflow_entities_extracted_total",
                "Entities in produced events, by type.",
                &["type"],
            )?,
            sentiment_score,
            rebalances: counter(
                &r,
                "newsflow_rebalances_total",
                "Partition assignment changes (assign, revoke).",
                &["event"],
            )?,
            assigned_partitions: int_gauge(
                &r,
                "newsflow_assigned_partitions",
                "Partitions currently assigned to this worker.",
            )?,
            ready: int_gauge(&r, "newsflow_ready", "1 while /readyz answers 200.")?,
            build_info: int_gauge_vec(
                &r,
                "newsflow_build_info",
                "Always 1; labels carry the build.",
                &["version"],
            )?,
            kafka_broker_up: int_gauge_vec(
                &r,
                "newsflow_kafka_broker_up",
                "1 when librdkafka's connection to the broker is UP.",
                &["client", "broker"],
            )?,
            kafka_broker_rtt: gauge_vec(
                &r,
                "newsflow_kafka_broker_rtt_seconds",
                "Broker request round-trip time (librdkafka window).",
                &["client", "broker", "quantile"],
            )?,
            kafka_queue_messages: int_gauge_vec(
                &r,
                "newsflow_kafka_queue_messages",
                "Messages in librdkafka's queues (msg_cnt).",
                &["client"],
            )?,
            kafka_reply_queue: int_gauge_vec(
                &r,
                "newsflow_kafka_reply_queue_ops",
                "Operations waiting in librdkafka's reply queue.",
                &["client"],
            )?,
            replay_remaining: int_gauge_vec(
                &r,
                "newsflow_replay_remaining_messages",
                "Records left to replay, per partition.",
                &["topic", "partition"],
            )?,
            replay_rate,
            remote_requests: counter(
                &r,
                "newsflow_remote_requests_total",
                "HTTP requests to the remote model by outcome (ok, timeout, connect, http_429, http_5xx, http_4xx, invalid_response).",
                &["outcome"],
            )?,
            remote_request_duration,
            remote_circuit_state: int_gauge(
                &r,
                "newsflow_remote_circuit_state",
                "Remote model circuit breaker: 0 closed, 1 open, 2 half-open.",
            )?,
            remote_fallbacks: counter(
                &r,
                "newsflow_remote_fallbacks_total",
                "Articles enriched by the fallback instead of the remote model, by reason.",
                &["reason"],
            )?,
            remote_inflight: int_gauge(
                &r,
                "newsflow_remote_inflight_requests",
                "HTTP requests to the remote model in flight.",
            )?,
            transactions: counter(
                &r,
                "newsflow_transactions_total",
                "Exactly-once mode: transactions ended, by outcome (committed, aborted).",
                &["outcome"],
            )?,
            transaction_duration: histogram(
                &r,
                "newsflow_transaction_duration_seconds",
                "Exactly-once mode: time from a transaction's begin to its commit.",
                vec![0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0],
            )?,
            transaction_records: histogram(
                &r,
                "newsflow_transaction_records",
                "Exactly-once mode: records (events and dead-letter records) per committed transaction.",
                vec![1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0],
            )?,
            transaction_committed_offset: int_gauge_vec(
                &r,
                "newsflow_transaction_committed_offset",
                "Exactly-once mode: input position committed by the last transaction, per partition.",
                &["topic", "partition"],
            )?,
            registry: r,
        };
        m.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        // Pre-create fixed label sets so every series exists from the first scrape.
        for reason in RejectReason::ALL.map(RejectReason::as_str) {
            m.dead_lettered.with_label_values(&[reason]);
        }
        for kind in ["produce", "commit", "consume", "dead_letter_refused"] {
            m.processing_errors.with_label_values(&[kind]);
        }
        for stage in ["parse", "normalize", "enrich", "produce"] {
            m.stage_duration.with_label_values(&[stage]);
        }
        for t in EntityType::ALL {
            m.entities_extracted.with_label_values(&[t.as_str()]);
        }
        for event in ["assign", "revoke"] {
            m.rebalances.with_label_values(&[event]);
        }
        for outcome in ["committed", "aborted"] {
            m.transactions.with_label_values(&[outcome]);
        }
        Ok(m)
    }

    /// The registry in Prometheus text format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let families = self.registry.gather();
        if let Err(e) = TextEncoder::new().encode(&families, &mut buf) {
            return format!("# encoding failed: {e}\n");
        }
        String::from_utf8(buf).unwrap_or_default()
    }

    /// Sum of a counter over all its label values (for summaries and tests).
    pub fn total(counter: &IntCounterVec) -> u64 {
        let mut total = 0;
        for family in prometheus::core::Collector::collect(counter) {
            for m in family.get_metric() {
                total += m.get_counter().value() as u64;
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_metric_is_exported() {
        let m = Metrics::new().unwrap();
        m.messages_consumed.with_label_values(&["t"]).inc();
        m.events_produced.with_label_values(&["o"]).inc();
        let text = m.render();
        for name in [
            "newsflow_messages_consumed_total",
            "newsflow_events_produced_total",
            "newsflow_messages_dead_lettered_total",
            "newsflow_stage_duration_seconds",
            "newsflow_inflight_messages",
            "newsflow_backpressure_paused",
            "newsflow_entities_extracted_total",
            "newsflow_build_info",
            "newsflow_ready",
        ] {
            assert!(text.contains(name), "{name} missing");
        }
        assert_eq!(Metrics::total(&m.messages_consumed), 1);
    }
}
