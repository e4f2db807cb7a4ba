//! `newsflow demo`: the real worker against librdkafka's in-process mock cluster, fed with
//! the sample articles shipped in the binary. No Kafka installation needed.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, LogFormat};
use crate::telemetry::init_logging;

const SEED_ARTICLE: &str = include_str!("../../samples/seed-article.txt");
const SAMPLE_ARTICLES: &str = include_str!("../../samples/articles.jsonl");
const DEMO_TIMEOUT: Duration = Duration::from_secs(60);

fn demo_config(bootstrap: &str) -> anyhow::Result<Config> {
    let text = format!(
        r#"
        [kafka]
        bootstrap_servers = "{bootstrap}"
        group_id = "newsflow-demo"
        session_timeout_ms = 6000
        statistics_interval_ms = 1000
        [topics]
        input = "news.raw"
        output = "news.enriched"
        dead_letter = "news.dead-letter"
        [http]
        listen = "127.0.0.1:0"
        [shutdown]
        drain_timeout_ms = 5000
        "#
    );
    Ok(Config::from_toml_str(&text, "demo", std::env::vars())?)
}

/// Runs the demo and prints what came out.
pub async fn command(full: bool) -> anyhow::Result<()> {
    init_logging(LogFormat::Text, "warn");
    let cluster = MockCluster::new(1).context("starting the mock cluster")?;
    cluster.create_topic("news.raw", 3, 1)?;
    cluster.create_topic("news.enriched", 3, 1)?;
    cluster.create_topic("news.dead-letter", 1, 1)?;
    let bootstrap = cluster.bootstrap_servers();
    let config = demo_config(&bootstrap)?;

    let mut inputs: Vec<String> = vec![SEED_ARTICLE.to_string()];
    inputs.extend(
        SAMPLE_ARTICLES
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(String::from),
    );
    inputs.push(String::new()); // an empty value: poison
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()?;
    for (i, value) in inputs.iter().enumerate() {
        let key = format!("sample-{i}");
        producer
            .send(
                FutureRecord::to("news.raw").key(&key).payload(value),
                Duration::from_secs(5),
            )
            .await
            .map_err(|(e, _)| e)
            .context("loading sample articles")?;
    }
    println!(
        "Loaded {} sample records into the embedded cluster ({bootstrap}).",
        inputs.len()
    );

    let shutdown = CancellationToken::new();
    let worker = tokio::spawn(crate::app::run_live(config, shutdown.clone()));
    let watcher = output_watcher(&bootstrap)?;
    let started = Instant::now();
    let mut events = Vec::new();
    let mut dead = Vec::new();
    while events.len() + dead.len() < inputs.len() && started.elapsed() < DEMO_TIMEOUT {
        if let Some(Ok(m)) = watcher.poll(Duration::from_millis(200)) {
            let payload = m.payload().unwrap_or_default().to_vec();
            if m.topic() == "news.enriched" {
                events.push(payload);
            } else {
                let class = m
                    .headers()
                    .and_then(|h| {
                        use rdkafka::message::Headers;
                        h.iter()
                            .find(|h| h.key == "newsflow.error.class")
                            .and_then(|h| h.value)
                            .map(|v| String::from_utf8_lossy(v).into_owned())
                    })
                    .unwrap_or_default();
                dead.push((m.offset(), class));
            }
        }
    }
    shutdown.cancel();
    let summary = worker.await.context("worker task failed")??;

    println!("\n== {} events on news.enriched ==", events.len());
    for e in &events {
        let v: serde_json::Value = serde_json::from_slice(e)?;
        if full {
            println!("{}", serde_json::to_string_pretty(&v)?);
            continue;
        }
        let entities: Vec<String> = v["entities"]
            .as_array()
            .map(|a| {
                a.iter()
                    .take(12)
                    .map(|e| {
                        format!(
                            "{} [{}]",
                            e["text"].as_str().unwrap_or(""),
                            e["type"].as_str().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        println!(
            "- {} | {} | {} words | sentiment {} ({:.2})\n  entities: {}",
            v["article_id"].as_str().unwrap_or(""),
            v["title"].as_str().unwrap_or(""),
            v["word_count"],
            v["sentiment"]["label"].as_str().unwrap_or(""),
            v["sentiment"]["score"].as_f64().unwrap_or(0.0),
            entities.join(", ")
        );
    }
    println!("\n== {} records on news.dead-letter ==", dead.len());
    for (offset, class) in &dead {
        println!("- offset {offset}: {class}");
    }
    println!(
        "\n== metrics ==\nconsumed {}  produced {}  dead-lettered {}  unfinished {}",
        summary.consumed, summary.produced, summary.dead_lettered, summary.unfinished
    );
    if events.len() + dead.len() < inputs.len() {
        anyhow::bail!(
            "demo timed out: {} of {} records came out",
            events.len() + dead.len(),
            inputs.len()
        );
    }
    Ok(())
}

fn output_watcher(bootstrap: &str) -> anyhow::Result<BaseConsumer> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "newsflow-demo-watcher")
        .set("auto.offset.reset", "earliest")
        .create()?;
    c.subscribe(&["news.enriched", "news.dead-letter"])?;
    Ok(c)
}
