//! Throughput of the live worker and of a replay through a real broker. Prints figures;
//! asserts nothing about time. Run through `scripts/bench.sh`, which starts the broker and
//! generates the input (`NEWSFLOW_TEST_BROKERS`, `NEWSFLOW_BENCH_INPUT`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use newsflow::app::App;
use newsflow::config::Config;
use newsflow::metrics::Metrics;
use newsflow::worker::{RunOptions, RunSummary, Subscription};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;

const PARTITIONS: i32 = 3;

fn config(brokers: &str, suffix: &str) -> Config {
    let text = format!(
        r#"
        [kafka]
        bootstrap_servers = "{brokers}"
        group_id = "bench-{suffix}"
        session_timeout_ms = 30000
        [topics]
        input = "bench-in-{suffix}"
        output = "bench-out-{suffix}"
        dead_letter = "bench-dlq-{suffix}"
        [http]
        listen = "127.0.0.1:0"
        [shutdown]
        drain_timeout_ms = 5000
        "#
    );
    Config::from_toml_str(&text, "bench", Vec::new()).expect("bench config")
}

async fn run_until_done(config: Config, options: RunOptions, expected: u64) -> (RunSummary, f64) {
    let app = App::without_server().expect("metrics");
    let metrics = app.metrics.clone();
    let shutdown = CancellationToken::new();
    let bounded = matches!(options.subscription, Subscription::Bounded { .. });
    let run = tokio::spawn(app.run(config, options, None, shutdown.clone()));
    let mut first: Option<Instant> = None;
    loop {
        let consumed = Metrics::total(&metrics.messages_consumed);
        if first.is_none() && consumed > 0 {
            first = Some(Instant::now());
        }
        let done =
            Metrics::total(&metrics.events_produced) + Metrics::total(&metrics.dead_lettered);
        if done >= expected || (bounded && run.is_finished()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = first.map_or(0.0, |f| f.elapsed().as_secs_f64());
    shutdown.cancel();
    let summary = run.await.expect("join").expect("worker");
    (summary, secs)
}

#[tokio::main]
async fn main() {
    let Ok(input) = std::env::var("NEWSFLOW_BENCH_INPUT") else {
        eprintln!("skipping: run through scripts/bench.sh (needs NEWSFLOW_BENCH_INPUT)");
        return;
    };
    let lines: Vec<String> = std::fs::read_to_string(&input)
        .expect("input")
        .lines()
        .map(String::from)
        .collect();
    // The worker's own ceiling: librdkafka's in-process mock cluster as the broker.
    let mock = rdkafka::mocking::MockCluster::new(1).expect("mock cluster");
    println!("== librdkafka mock cluster (in-process broker) ==");
    let suffix = "mock".to_string();
    for t in ["in", "out", "dlq", "second", "replay"] {
        mock.create_topic(&format!("bench-{t}-{suffix}"), PARTITIONS, 1)
            .expect("mock topic");
    }
    bench_on(&mock.bootstrap_servers(), &lines, suffix, false).await;
    match std::env::var("NEWSFLOW_TEST_BROKERS") {
        Ok(brokers) => {
            println!("== real broker at {brokers} ==");
            let suffix = format!("{}", std::process::id());
            bench_on(&brokers, &lines, suffix, true).await;
        }
        Err(_) => eprintln!("no NEWSFLOW_TEST_BROKERS: real-broker run skipped"),
    }
}

async fn bench_on(brokers: &str, lines: &[String], suffix: String, create_topics: bool) {
    let brokers = brokers.to_string();
    let cfg = config(&brokers, &suffix);
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("admin");
    let replay_topic = format!("bench-replay-{suffix}");
    let second_topic = format!("bench-second-{suffix}");
    let topics: Vec<NewTopic> = [
        &cfg.topics.input,
        &cfg.topics.output,
        &cfg.topics.dead_letter,
        &second_topic,
        &replay_topic,
    ]
    .iter()
    .map(|t| NewTopic::new(t, PARTITIONS, TopicReplication::Fixed(1)))
    .collect();
    if create_topics {
        let results = admin
            .create_topics(&topics, &AdminOptions::new())
            .await
            .expect("create topics");
        for r in results {
            r.expect("topic");
        }
    }
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("linger.ms", "20")
        .create()
        .expect("producer");
    let started = Instant::now();
    let keys: Vec<String> = (0..lines.len()).map(|i| format!("k{i}")).collect();
    // send_result enqueues at once (send would enqueue only when awaited, one by one).
    let mut deliveries = Vec::with_capacity(lines.len());
    for (l, k) in lines.iter().zip(&keys) {
        let mut record = FutureRecord::to(&cfg.topics.input).key(k).payload(l);
        loop {
            match producer.send_result(record) {
                Ok(d) => break deliveries.push(d),
                Err((_, r)) => {
                    record = r;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
    }
    for d in deliveries {
        d.await
            .expect("delivery")
            .map_err(|(e, _)| e)
            .expect("produce");
    }
    let n = lines.len() as u64;
    println!(
        "loaded {n} articles in {:.2} s",
        started.elapsed().as_secs_f64()
    );

    let (live, secs) = run_until_done(cfg.clone(), RunOptions::live(&cfg), n).await;
    println!(
        "live worker: {} events + {} dead-lettered in {secs:.2} s = {:.0} articles/s (first record read → last acknowledged)",
        live.produced,
        live.dead_lettered,
        n as f64 / secs
    );
    // Once more in a fresh group over the same (now warm) topic: separates the broker's
    // first-read cost from the worker's.
    let mut again = cfg.clone();
    again.kafka.group_id = format!("{}-again", cfg.kafka.group_id);
    again.topics.output = second_topic.clone();
    let (live2, secs) = run_until_done(again.clone(), RunOptions::live(&again), n).await;
    println!(
        "live worker, second group: {} events + {} dead-lettered in {secs:.2} s = {:.0} articles/s",
        live2.produced,
        live2.dead_lettered,
        n as f64 / secs
    );

    let planner: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("consumer");
    let mut starts = Vec::new();
    let mut ends = HashMap::new();
    for p in 0..PARTITIONS {
        let (low, high) = planner
            .fetch_watermarks(&cfg.topics.input, p, Duration::from_secs(10))
            .expect("watermarks");
        starts.push((cfg.topics.input.clone(), p, low));
        ends.insert((cfg.topics.input.clone(), p), high);
    }
    let options = RunOptions {
        group_id: format!("bench-replay-{suffix}"),
        output_topic: format!("bench-replay-{suffix}"),
        subscription: Subscription::Bounded { starts, ends },
        extra_headers: vec![("newsflow.replay.id".into(), b"bench".to_vec())],
        rate_limit: None,
    };
    let (replay, secs) = run_until_done(cfg.clone(), options, n).await;
    println!(
        "replay: {} events + {} dead-lettered in {secs:.2} s = {:.0} articles/s",
        replay.produced,
        replay.dead_lettered,
        n as f64 / secs
    );
}
