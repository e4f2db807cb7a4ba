//! Helpers: unique topic and group names, a worker process on a free port, producing and
//! reading topics, committed offsets and watermarks.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

/// The broker under test, or `None` to skip (panics when a broker is required).
pub fn brokers() -> Option<String> {
    match std::env::var("NEWSFLOW_TEST_BROKERS") {
        Ok(b) if !b.is_empty() => Some(b),
        _ => {
            assert!(
                std::env::var("NEWSFLOW_REQUIRE_BROKER").is_err(),
                "NEWSFLOW_TEST_BROKERS is unset but NEWSFLOW_REQUIRE_BROKER is set"
            );
            eprintln!("skipping: NEWSFLOW_TEST_BROKERS unset (scripts/test.sh starts a broker)");
            None
        }
    }
}

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() % 1_000_000_000)
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Topics for one test.
#[derive(Clone)]
pub struct Topics {
    pub input: String,
    pub output: String,
    pub dead_letter: String,
}

pub async fn create_topics(brokers: &str, partitions: i32) -> Topics {
    let t = Topics {
        input: unique("in"),
        output: unique("out"),
        dead_letter: unique("dlq"),
    };
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let topics = [
        NewTopic::new(&t.input, partitions, TopicReplication::Fixed(1)),
        NewTopic::new(&t.output, partitions, TopicReplication::Fixed(1)),
        NewTopic::new(&t.dead_letter, 1, TopicReplication::Fixed(1)),
    ];
    let results = admin
        .create_topics(&topics, &AdminOptions::new())
        .await
        .unwrap();
    for r in results {
        r.unwrap();
    }
    wait_for_topic(brokers, &t.input, partitions);
    t
}

/// Creates one topic.
pub async fn create_topic(brokers: &str, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for r in admin
        .create_topics(&[topic], &AdminOptions::new())
        .await
        .unwrap()
    {
        r.unwrap();
    }
    wait_for_topic(brokers, name, partitions);
}

fn wait_for_topic(brokers: &str, topic: &str, partitions: i32) {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(md) = c.fetch_metadata(Some(topic), Duration::from_secs(5))
            && md
                .topics()
                .first()
                .is_some_and(|t| t.error().is_none() && t.partitions().len() == partitions as usize)
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("topic {topic} never appeared");
}

pub fn producer(brokers: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .create()
        .unwrap()
}

/// Produces keyed values and waits for every acknowledgement.
pub async fn produce(brokers: &str, topic: &str, records: &[(String, Vec<u8>)]) {
    let p = producer(brokers);
    let futures: Vec<_> = records
        .iter()
        .map(|(k, v)| {
            p.send(
                FutureRecord::to(topic).key(k).payload(v),
                Duration::from_secs(30),
            )
        })
        .collect();
    for f in futures {
        f.await.map_err(|(e, _)| e).unwrap();
    }
}

/// A JSON article with a given id.
pub fn article(id: &str, n: usize) -> Vec<u8> {
    serde_json::json!({
        "id": id,
        "url": format!("https://news.example.com/world/{n}?utm_source=test"),
        "source": "Test Wire",
        "title": format!("Minister Anna Berg visits Oslo for talks number {n}"),
        "body": format!("OSLO - Foreign Minister Anna Berg met officials of the Nordic Council in Oslo on Monday, article {n}.\n\nThe talks were described as constructive."),
        "published_at": "2022-11-03T10:00:00Z",
    })
    .to_string()
    .into_bytes()
}

/// Reads `topic` from the beginning until `count` records or the timeout.
pub fn read_topic(
    brokers: &str,
    topic: &str,
    count: usize,
    timeout: Duration,
) -> Vec<OwnedMessage> {
    let c = reader(brokers);
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in md.topics()[0].partitions() {
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + timeout;
    while out.len() < count && Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            out.push(m.detach());
        }
    }
    out
}

/// Reads `topic` until every id in `expected` was seen as an event's `article_id` (or
/// the timeout); duplicates from at-least-once delivery are fine. Returns the ids seen.
pub fn read_article_ids(
    brokers: &str,
    topic: &str,
    expected: &std::collections::HashSet<String>,
    timeout: Duration,
) -> std::collections::HashSet<String> {
    let c = reader(brokers);
    c.subscribe(&[topic]).unwrap();
    let mut seen = std::collections::HashSet::new();
    let deadline = Instant::now() + timeout;
    while !expected.is_subset(&seen) && Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            let v: serde_json::Value =
                serde_json::from_slice(m.payload().unwrap_or_default()).unwrap();
            seen.insert(v["article_id"].as_str().unwrap_or_default().to_string());
        }
    }
    seen
}

/// A consumer in a fresh group that reads from the beginning and commits nothing.
fn reader(brokers: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap()
}

/// Keyed JSON articles `{prefix}{n}` for every `n` in `range` (key = id).
pub fn articles(prefix: &str, range: std::ops::Range<usize>) -> Vec<(String, Vec<u8>)> {
    range
        .map(|n| {
            let id = format!("{prefix}{n}");
            let value = article(&id, n);
            (id, value)
        })
        .collect()
}

/// A header's value as text.
pub fn header(m: &OwnedMessage, key: &str) -> Option<String> {
    m.headers()?
        .iter()
        .find(|h| h.key == key)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Committed offsets of `group` for every partition of `topic`.
pub fn committed(brokers: &str, group: &str, topic: &str, partitions: i32) -> HashMap<i32, i64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = c.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    got.elements()
        .iter()
        .map(|e| {
            (
                e.partition(),
                match e.offset() {
                    Offset::Offset(o) => o,
                    _ => -1,
                },
            )
        })
        .collect()
}

/// High watermarks of every partition of `topic`.
pub fn high_watermarks(brokers: &str, topic: &str, partitions: i32) -> HashMap<i32, i64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    (0..partitions)
        .map(|p| {
            (
                p,
                c.fetch_watermarks(topic, p, Duration::from_secs(10))
                    .unwrap()
                    .1,
            )
        })
        .collect()
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A worker process; killed when dropped.
pub struct WorkerProcess {
    pub child: Child,
    pub port: u16,
    pub group: String,
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl WorkerProcess {
    /// Starts `newsflow run` against the broker with the given topics and group.
    pub fn start(brokers: &str, topics: &Topics, group: &str, extra_env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_newsflow"));
        cmd.args([
            "run",
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml"),
        ])
        .env("NEWSFLOW__KAFKA__BOOTSTRAP_SERVERS", brokers)
        .env("NEWSFLOW__KAFKA__GROUP_ID", group)
        .env("NEWSFLOW__KAFKA__SESSION_TIMEOUT_MS", "6000")
        .env("NEWSFLOW__KAFKA__STATISTICS_INTERVAL_MS", "1000")
        .env("NEWSFLOW__TOPICS__INPUT", &topics.input)
        .env("NEWSFLOW__TOPICS__OUTPUT", &topics.output)
        .env("NEWSFLOW__TOPICS__DEAD_LETTER", &topics.dead_letter)
        .env("NEWSFLOW__HTTP__LISTEN", format!("127.0.0.1:{port}"))
        .env("NEWSFLOW__SHUTDOWN__DRAIN_TIMEOUT_MS", "5000")
        .env("NEWSFLOW__LOG__LEVEL", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawning newsflow");
        WorkerProcess {
            child,
            port,
            group: group.to_string(),
        }
    }

    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let r = reqwest::get(&url).await.ok()?;
        let status = r.status().as_u16();
        Some((status, r.text().await.unwrap_or_default()))
    }

    /// Waits until a metric (summed over its series) reaches `at_least`, or the timeout.
    pub async fn wait_for_metric(&self, name: &str, at_least: f64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.metric(name).await < at_least && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some((200, _)) = self.get("/readyz").await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("worker never became ready");
    }

    /// A counter or gauge summed over its series, from `/metrics`.
    pub async fn metric(&self, name: &str) -> f64 {
        let (_, text) = self.get("/metrics").await.unwrap_or_default();
        text.lines()
            .filter(|l| {
                l.starts_with(name)
                    && (l[name.len()..].starts_with('{') || l[name.len()..].starts_with(' '))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("worker did not exit within {timeout:?}");
    }
}

/// A private Tansu broker (for tests that stop and restart the broker), with its data in a
/// temporary directory that survives restarts. `None` when `NEWSFLOW_TEST_TANSU` is unset.
pub struct OwnBroker {
    pub addr: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
    tansu: String,
}

impl OwnBroker {
    pub fn start() -> Option<Self> {
        let tansu = std::env::var("NEWSFLOW_TEST_TANSU")
            .ok()
            .filter(|t| !t.is_empty())?;
        let port = free_port();
        let mut b = OwnBroker {
            addr: format!("127.0.0.1:{port}"),
            dir: tempfile::tempdir().unwrap(),
            child: None,
            tansu,
        };
        b.up();
        Some(b)
    }

    /// (Re)starts the broker process on the same address and storage.
    pub fn up(&mut self) {
        let url = format!("tcp://{}", self.addr);
        let child = Command::new(&self.tansu)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "sqlite://broker.db"])
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&self.addr).is_err() {
            assert!(Instant::now() < deadline, "tansu did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills the broker process (SIGKILL).
    pub fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        self.down();
    }
}

/// A worker config for librdkafka's mock cluster: topics `in`, `out` and `dlq`, a short
/// session and drain, and `extra` TOML appended.
pub fn mock_config(brokers: &str, group: &str, extra: &str) -> newsflow::config::Config {
    newsflow::config::Config::from_toml_str(
        &format!(
            r#"
            [kafka]
            bootstrap_servers = "{brokers}"
            group_id = "{group}"
            session_timeout_ms = 6000
            [topics]
            input = "in"
            output = "out"
            dead_letter = "dlq"
            [shutdown]
            drain_timeout_ms = 3000
            {extra}
            "#
        ),
        "test",
        Vec::new(),
    )
    .unwrap()
}

/// A worker running in this test's process (no operations server): its metrics and health,
/// the token that stops it, and its run.
pub struct InProcessWorker {
    pub metrics: newsflow::metrics::Metrics,
    pub health: std::sync::Arc<newsflow::health::Health>,
    pub shutdown: tokio_util::sync::CancellationToken,
    pub run: tokio::task::JoinHandle<anyhow::Result<newsflow::worker::RunSummary>>,
}

impl InProcessWorker {
    /// Starts a live group member with `enricher`.
    pub fn start(
        config: &newsflow::config::Config,
        enricher: std::sync::Arc<dyn newsflow::enrich::Enricher>,
    ) -> Self {
        let app = newsflow::app::App::without_server().unwrap();
        let metrics = app.metrics.clone();
        let health = app.health.clone();
        let shutdown = tokio_util::sync::CancellationToken::new();
        let run = tokio::spawn(app.run(
            config.clone(),
            newsflow::worker::RunOptions::live(config),
            Some(enricher),
            shutdown.clone(),
        ));
        InProcessWorker {
            metrics,
            health,
            shutdown,
            run,
        }
    }

    /// Asks the worker to stop and returns how its run ended.
    pub async fn stop(self) -> anyhow::Result<newsflow::worker::RunSummary> {
        self.shutdown.cancel();
        self.run.await.unwrap()
    }
}

/// A one-broker mock cluster with `in` and `out` of `partitions` partitions and a
/// one-partition `dlq`.
pub fn mock_cluster(
    partitions: i32,
) -> rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext> {
    let cluster = rdkafka::mocking::MockCluster::new(1).unwrap();
    cluster.create_topic("in", partitions, 1).unwrap();
    cluster.create_topic("out", partitions, 1).unwrap();
    cluster.create_topic("dlq", 1, 1).unwrap();
    cluster
}

/// Everything in `topic` (until 5 s pass without a new record), read off the async runtime.
pub async fn read_all(brokers: &str, topic: &str) -> Vec<OwnedMessage> {
    let (b, t) = (brokers.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || read_topic(&b, &t, usize::MAX, Duration::from_secs(5)))
        .await
        .unwrap()
}
