//! Throughput of the live worker and of a replay through a real broker. Prints figures;
//! asserts nothing about time. Run through `scripts/bench.sh`, which starts the broker and
//! generates the input (`NEWSFLOW_TEST_BROKERS`, `NEWSFLOW_BENCH_INPUT`).
//!
//! For latency experiments, `NEWSFLOW_BENCH_PACED_RATE=N` runs only the paced run at N
//! articles/s (`NEWSFLOW_BENCH_PACED_SECS` sets its length, 20 s by default, and
//! `NEWSFLOW_BENCH_PACED_LINGER_MS` its producer's linger, 5 ms by default).

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
/// How long the paced (latency) run writes, unless `NEWSFLOW_BENCH_PACED_SECS` says.
const PACED_SECS: f64 = 20.0;

/// The bench's worker config; `NEWSFLOW_BENCH_CONFIG` appends TOML (for experiments, e.g.
/// `[pipeline]` settings).
fn config(brokers: &str, suffix: &str) -> Config {
    let extra = std::env::var("NEWSFLOW_BENCH_CONFIG").unwrap_or_default();
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
        {extra}
        "#
    );
    Config::from_toml_str(&text, "bench", Vec::new()).expect("bench config")
}

/// A number from the environment, when set and valid.
fn env_f64(name: &str) -> Option<f64> {
    std::env::var(name).ok()?.parse().ok()
}

/// CPU seconds this process has used (user + system, every thread: the worker and, on the
/// mock cluster, the in-process broker), from /proc/self/stat; `None` off Linux.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux architecture newsflow builds for.
    Some(ticks as f64 / 100.0)
}

/// Resident memory of this process now and at its peak (VmRSS, VmHWM), in MB; `None` off
/// Linux. It holds the bench's input (every article, once) as well as the worker, and on
/// the mock cluster the in-process broker with every topic's records too.
fn memory_mb() -> Option<(f64, f64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = |key: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        line.split_whitespace().nth(1)?.parse::<f64>().ok()
    };
    Some((kb("VmRSS:")? / 1024.0, kb("VmHWM:")? / 1024.0))
}

/// The smallest bucket bound at or below which a share `q` of the observations fall.
fn quantile_bound(h: &prometheus::Histogram, q: f64) -> f64 {
    let m = prometheus::core::Metric::metric(h);
    let hist = m.get_histogram();
    let total = hist.get_sample_count() as f64;
    hist.get_bucket()
        .iter()
        .find(|b| b.cumulative_count() as f64 >= q * total)
        .map_or(f64::INFINITY, |b| b.upper_bound())
}

/// One timed run: the summary, wall seconds (first record read → last acknowledged) and the
/// CPU seconds the process used in that time.
struct Timed {
    summary: RunSummary,
    secs: f64,
    cpu: Option<f64>,
}

impl Timed {
    fn rate(&self, n: u64) -> f64 {
        n as f64 / self.secs
    }

    fn report(&self, what: &str, n: u64) {
        let rate = n as f64 / self.secs;
        let cpu = match self.cpu {
            Some(cpu) => format!(
                ", {cpu:.2} CPU-s = {:.0} articles per CPU-second ({:.0}% of 2 cores busy)",
                n as f64 / cpu,
                100.0 * cpu / self.secs / 2.0
            ),
            None => String::new(),
        };
        let memory = match memory_mb() {
            Some((rss, peak)) => format!("; resident {rss:.0} MB, peak {peak:.0} MB"),
            None => String::new(),
        };
        println!(
            "{what}: {} events + {} dead-lettered in {:.2} s = {rate:.0} articles/s{cpu}{memory}",
            self.summary.produced, self.summary.dead_lettered, self.secs
        );
    }
}

async fn run_until_done(config: Config, options: RunOptions, expected: u64) -> Timed {
    let app = App::without_server().expect("metrics");
    let metrics = app.metrics.clone();
    let shutdown = CancellationToken::new();
    let bounded = matches!(options.subscription, Subscription::Bounded { .. });
    let run = tokio::spawn(app.run(config, options, None, shutdown.clone()));
    let mut first: Option<(Instant, Option<f64>)> = None;
    loop {
        let consumed = Metrics::total(&metrics.messages_consumed);
        if first.is_none() && consumed > 0 {
            first = Some((Instant::now(), cpu_seconds()));
        }
        let done =
            Metrics::total(&metrics.events_produced) + Metrics::total(&metrics.dead_lettered);
        if done >= expected || (bounded && run.is_finished()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = first.map_or(0.0, |(f, _)| f.elapsed().as_secs_f64());
    print_stage_means(&metrics);
    let cpu = match (first.and_then(|(_, c)| c), cpu_seconds()) {
        (Some(start), Some(end)) => Some(end - start),
        _ => None,
    };
    shutdown.cancel();
    let summary = run.await.expect("join").expect("worker");
    Timed { summary, secs, cpu }
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
    for t in ["in", "out", "dlq", "second", "replay", "paced"] {
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
    let paced_topic = format!("bench-paced-{suffix}");
    let topics: Vec<NewTopic> = [
        &cfg.topics.input,
        &cfg.topics.output,
        &cfg.topics.dead_letter,
        &second_topic,
        &replay_topic,
        &paced_topic,
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
    let mut paced_cfg = cfg.clone();
    paced_cfg.kafka.group_id = format!("{}-paced", cfg.kafka.group_id);
    paced_cfg.topics.input = paced_topic;
    if let Some(rate) = env_f64("NEWSFLOW_BENCH_PACED_RATE") {
        // Latency only, at a given rate (for experiments): no full-speed runs.
        paced(&brokers, paced_cfg, lines, rate).await;
        return;
    }
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

    let live = run_until_done(cfg.clone(), RunOptions::live(&cfg), n).await;
    live.report("live worker (first record read → last acknowledged)", n);
    let live_rate = live.rate(n);
    // Once more in a fresh group over the same (now warm) topic: separates the broker's
    // first-read cost from the worker's.
    let mut again = cfg.clone();
    again.kafka.group_id = format!("{}-again", cfg.kafka.group_id);
    again.topics.output = second_topic.clone();
    run_until_done(again.clone(), RunOptions::live(&again), n)
        .await
        .report("live worker, second group", n);

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
    run_until_done(cfg.clone(), options, n)
        .await
        .report("replay", n);

    paced(&brokers, paced_cfg, lines, live_rate / 2.0).await;
}

/// Prints the mean time per record of each stage.
fn print_stage_means(metrics: &Metrics) {
    let stages: Vec<String> = ["parse", "normalize", "enrich", "produce"]
        .iter()
        .map(|stage| {
            let h = metrics.stage_duration.with_label_values(&[stage]);
            let mean_ms = 1000.0 * h.get_sample_sum() / h.get_sample_count().max(1) as f64;
            format!("{stage} {mean_ms:.2} ms")
        })
        .collect();
    println!("  mean per record: {}", stages.join(", "));
}

/// End-to-end latency at half the live worker's maximum rate: a producer writes articles at
/// `rate` per second for `PACED_SECS` into a fresh topic while a worker in its own group
/// reads it; latency is the worker's own histogram (input record timestamp, taken when the
/// bench hands the record to its producer, to the event's acknowledgement).
async fn paced(brokers: &str, mut cfg: Config, lines: &[String], rate: f64) {
    // librdkafka's mock cluster holds a fetch that finds no data for the whole
    // fetch.wait.max.ms (500 ms by default) even when records arrive meanwhile
    // (`rdkafka_mock_handlers.c`: "If there was no data, delay up to MaxWait"), which a
    // Kafka broker does not; a short wait keeps that artefact out of the latency. A value
    // set through NEWSFLOW_BENCH_CONFIG wins (500 shows the artefact).
    cfg.kafka
        .consumer_properties
        .0
        .entry("fetch.wait.max.ms".into())
        .or_insert_with(|| "10".into());
    let app = App::without_server().expect("metrics");
    let metrics = app.metrics.clone();
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(app.run(cfg.clone(), RunOptions::live(&cfg), None, shutdown.clone()));
    let deadline = Instant::now() + Duration::from_secs(30);
    while metrics.assigned_partitions.get() < i64::from(PARTITIONS) {
        if Instant::now() > deadline {
            println!("paced run skipped: the worker got no assignment within 30 s");
            shutdown.cancel();
            let _ = run.await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // librdkafka's default linger (5 ms, counted in the latency: the record's timestamp is
    // taken when it is handed to the producer). With linger 0 every record is its own
    // message set, and the mock cluster finds a fetch's offset by walking its partition's
    // list of message sets (`rd_kafka_mock_msgset_find`, "FIXME: Maintain an index"): at
    // 2,000 records/s that walk took 19% of the CPU (perf) and queued the worker behind it.
    // `NEWSFLOW_BENCH_PACED_LINGER_MS=0` shows it.
    let linger = env_f64("NEWSFLOW_BENCH_PACED_LINGER_MS").unwrap_or(5.0);
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", linger.to_string())
        .create()
        .expect("producer");
    let secs = env_f64("NEWSFLOW_BENCH_PACED_SECS").unwrap_or(PACED_SECS);
    let n = (rate * secs) as usize;
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    for i in 0..n {
        let due = started + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let key = format!("p{i}");
        let record = FutureRecord::to(&cfg.topics.input)
            .key(&key)
            .payload(&lines[i % lines.len()]);
        // Dropped delivery futures still deliver; a full queue would be a bench bug.
        drop(producer.send_result(record).expect("paced producer queue"));
    }
    // A broker that falls behind (Tansu's SQLite storage does, see docs/deploy.md) must not
    // hang the bench: what was acknowledged by then is reported.
    let written = Instant::now();
    loop {
        let done =
            Metrics::total(&metrics.events_produced) + Metrics::total(&metrics.dead_lettered);
        if done >= n as u64 {
            break;
        }
        if written.elapsed() > Duration::from_secs(60) {
            println!(
                "paced run: only {done} of {n} articles acknowledged 60 s after the last was \
                 written ({} read)",
                Metrics::total(&metrics.messages_consumed)
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let busy = match (cpu_before, cpu_seconds()) {
        (Some(a), Some(b)) => format!(
            "{:.0}% of 2 cores busy",
            100.0 * (b - a) / started.elapsed().as_secs_f64() / 2.0
        ),
        _ => "CPU not measured".into(),
    };
    let h = &metrics.end_to_end_latency;
    let mean_ms = 1000.0 * h.get_sample_sum() / h.get_sample_count().max(1) as f64;
    println!(
        "paced at {rate:.0} articles/s for {secs:.0} s: {} articles, \
         end-to-end latency mean {mean_ms:.1} ms, p50 ≤ {:.0} ms, p99 ≤ {:.0} ms (histogram bounds); {busy}",
        h.get_sample_count(),
        1000.0 * quantile_bound(h, 0.5),
        1000.0 * quantile_bound(h, 0.99),
    );
    print_stage_means(&metrics);
    shutdown.cancel();
    run.await.expect("join").expect("worker");
}
