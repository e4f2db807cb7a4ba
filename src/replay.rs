//! `newsflow replay`: a bounded run of the same pipeline over a range of a topic, in its own
//! consumer group with manual assignment, so the live group's offsets and assignment are
//! never touched.
//!
//! Planning (which offsets to read per partition) is resolved against the broker once, at
//! start: `--until now` captures the high watermarks then, so the run ends even while
//! producers keep writing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::config::Config;
use crate::kafka::Health;
use crate::metrics::Metrics;
use crate::worker::{self, RunOptions, RunSummary, Subscription};

/// Header on every replayed event, carrying the replay id.
pub const REPLAY_HEADER: &str = "newsflow.replay.id";
const TIMEOUT: Duration = Duration::from_secs(15);

/// Where a replay starts.
#[derive(Debug, Clone, PartialEq)]
pub enum From {
    Earliest,
    Time(DateTime<Utc>),
    Offsets(Vec<(String, i32, i64)>),
}

/// Where a replay ends (exclusive).
#[derive(Debug, Clone, PartialEq)]
pub enum Until {
    /// The high watermarks captured at start.
    Now,
    Time(DateTime<Utc>),
    Offsets(Vec<(String, i32, i64)>),
}

/// Parses `earliest` or an RFC 3339 time.
pub fn parse_from(s: &str) -> anyhow::Result<From> {
    if s == "earliest" {
        return Ok(From::Earliest);
    }
    Ok(From::Time(parse_time(s)?))
}

/// Parses `now` or an RFC 3339 time.
pub fn parse_until(s: &str) -> anyhow::Result<Until> {
    if s == "now" {
        return Ok(Until::Now);
    }
    Ok(Until::Time(parse_time(s)?))
}

fn parse_time(s: &str) -> anyhow::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .with_context(|| {
            format!(
                "`{s}` is not `earliest`/`now` or an RFC 3339 time such as 2024-05-01T00:00:00Z"
            )
        })
}

/// Parses `topic:partition:offset,...`.
pub fn parse_offsets(s: &str) -> anyhow::Result<Vec<(String, i32, i64)>> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|item| {
            let mut parts = item.trim().rsplitn(3, ':');
            let (offset, partition, topic) = (parts.next(), parts.next(), parts.next());
            match (
                topic,
                partition.and_then(|p| p.parse().ok()),
                offset.and_then(|o| o.parse().ok()),
            ) {
                (Some(t), Some(p), Some(o)) if !t.is_empty() && p >= 0 && o >= 0 => {
                    Ok((t.to_string(), p, o))
                }
                _ => bail!("`{item}` is not topic:partition:offset"),
            }
        })
        .collect()
}

/// One partition's range.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PartitionPlan {
    pub topic: String,
    pub partition: i32,
    /// First offset to process.
    pub start: i64,
    /// One past the last offset to process.
    pub end: i64,
}

impl PartitionPlan {
    pub fn count(&self) -> i64 {
        (self.end - self.start).max(0)
    }
}

/// The whole replay plan.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReplayPlan {
    pub replay_id: String,
    pub partitions: Vec<PartitionPlan>,
}

impl ReplayPlan {
    pub fn total(&self) -> i64 {
        self.partitions.iter().map(PartitionPlan::count).sum()
    }

    /// The `--until-offsets` value that pins this plan's end (for an exact resume).
    pub fn until_offsets_arg(&self) -> String {
        self.partitions
            .iter()
            .map(|p| format!("{}:{}:{}", p.topic, p.partition, p.end))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A table for people, then one JSON line.
    pub fn render(&self) -> String {
        let mut out = format!(
            "replay {}\n{:<40} {:>9} {:>12} {:>12} {:>10}\n",
            self.replay_id, "topic", "partition", "start", "end", "messages"
        );
        for p in &self.partitions {
            out.push_str(&format!(
                "{:<40} {:>9} {:>12} {:>12} {:>10}\n",
                p.topic,
                p.partition,
                p.start,
                p.end,
                p.count()
            ));
        }
        out.push_str(&format!(
            "total {} messages; pin the end with --until-offsets {}\n",
            self.total(),
            self.until_offsets_arg()
        ));
        out.push_str(&serde_json::json!({"replay_id": self.replay_id, "total": self.total(), "partitions": self.partitions}).to_string());
        out.push('\n');
        out
    }
}

/// A partition's watermarks and the offsets a time resolves to.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    low: i64,
    high: i64,
}

/// Clamps a requested start and end into the partition's watermarks.
fn clamp(bounds: Bounds, start: i64, end: i64) -> (i64, i64) {
    let start = start.clamp(bounds.low, bounds.high);
    let end = end.clamp(start, bounds.high);
    (start, end)
}

/// The offset of the first record at or after `time` (the high watermark if none).
fn offsets_for_time(
    consumer: &BaseConsumer,
    parts: &[(String, i32)],
    time: DateTime<Utc>,
    high: &HashMap<(String, i32), Bounds>,
) -> anyhow::Result<HashMap<(String, i32), i64>> {
    let mut tpl = TopicPartitionList::new();
    for (t, p) in parts {
        tpl.add_partition_offset(t, *p, Offset::Offset(time.timestamp_millis()))?;
    }
    let resolved = consumer
        .offsets_for_times(tpl, TIMEOUT)
        .context("resolving a time to offsets")?;
    let mut out = HashMap::new();
    for e in resolved.elements() {
        let key = (e.topic().to_string(), e.partition());
        let offset = match e.offset() {
            Offset::Offset(o) => o,
            // No record at or after the time: nothing to read in this partition.
            _ => high.get(&key).map_or(0, |b| b.high),
        };
        out.insert(key, offset);
    }
    Ok(out)
}

/// Resolves the plan against the broker.
pub fn build_plan(
    consumer: &BaseConsumer,
    topics: &[String],
    from: &From,
    until: &Until,
    replay_id: &str,
    resume: bool,
) -> anyhow::Result<ReplayPlan> {
    let metadata = consumer
        .fetch_metadata(None, TIMEOUT)
        .context("reading topic metadata")?;
    let mut parts: Vec<(String, i32)> = Vec::new();
    for topic in topics {
        let t = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
            .with_context(|| format!("topic `{topic}` does not exist"))?;
        parts.extend(t.partitions().iter().map(|p| (topic.clone(), p.id())));
    }
    parts.sort();
    let mut bounds = HashMap::new();
    for (t, p) in &parts {
        let (low, high) = consumer
            .fetch_watermarks(t, *p, TIMEOUT)
            .with_context(|| format!("reading watermarks of {t}:{p}"))?;
        bounds.insert((t.clone(), *p), Bounds { low, high });
    }
    let starts: HashMap<(String, i32), i64> = match from {
        From::Earliest => bounds.iter().map(|(k, b)| (k.clone(), b.low)).collect(),
        From::Time(time) => offsets_for_time(consumer, &parts, *time, &bounds)?,
        From::Offsets(list) => explicit(list, &bounds, "--from-offsets")?,
    };
    let ends: HashMap<(String, i32), i64> = match until {
        Until::Now => bounds.iter().map(|(k, b)| (k.clone(), b.high)).collect(),
        Until::Time(time) => offsets_for_time(consumer, &parts, *time, &bounds)?,
        Until::Offsets(list) => explicit(list, &bounds, "--until-offsets")?,
    };
    let committed = if resume {
        committed_offsets(consumer, &parts)?
    } else {
        HashMap::new()
    };
    let mut partitions = Vec::new();
    for key in &parts {
        let (Some(&start), Some(&end)) = (starts.get(key), ends.get(key)) else {
            continue;
        };
        let start = committed
            .get(key)
            .copied()
            .filter(|&c| c > start)
            .unwrap_or(start);
        let (start, end) = clamp(bounds[key], start, end);
        partitions.push(PartitionPlan {
            topic: key.0.clone(),
            partition: key.1,
            start,
            end,
        });
    }
    Ok(ReplayPlan {
        replay_id: replay_id.to_string(),
        partitions,
    })
}

fn explicit(
    list: &[(String, i32, i64)],
    bounds: &HashMap<(String, i32), Bounds>,
    flag: &str,
) -> anyhow::Result<HashMap<(String, i32), i64>> {
    list.iter()
        .map(|(t, p, o)| {
            let key = (t.clone(), *p);
            if !bounds.contains_key(&key) {
                bail!("{flag}: {t}:{p} is not a partition of the replayed topics");
            }
            Ok((key, *o))
        })
        .collect()
}

fn committed_offsets(
    consumer: &BaseConsumer,
    parts: &[(String, i32)],
) -> anyhow::Result<HashMap<(String, i32), i64>> {
    let mut tpl = TopicPartitionList::new();
    for (t, p) in parts {
        tpl.add_partition(t, *p);
    }
    let got = consumer
        .committed_offsets(tpl, TIMEOUT)
        .context("reading the replay group's committed offsets")?;
    Ok(got
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some(((e.topic().to_string(), e.partition()), o)),
            _ => None,
        })
        .collect())
}

/// Options of one replay.
#[derive(Debug, Clone)]
pub struct ReplayArgs {
    pub topics: Vec<String>,
    pub from: From,
    pub until: Until,
    pub group: Option<String>,
    pub resume: bool,
    pub output_topic: Option<String>,
    pub rate: Option<f64>,
    pub dry_run: bool,
}

/// Plans and runs a replay; prints the plan and a summary on stdout.
pub async fn run(
    config: Config,
    args: ReplayArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<RunSummary> {
    if args.resume && args.group.is_none() {
        bail!("--resume needs --group NAME (the group of the replay to resume)");
    }
    if let Some(rate) = args.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        bail!("--rate must be a positive number of articles per second");
    }
    let group = args.group.clone().unwrap_or_else(|| {
        format!(
            "{}-replay-{}",
            config.kafka.group_id,
            Utc::now().format("%Y%m%dT%H%M%SZ")
        )
    });
    if group == config.kafka.group_id {
        bail!("the replay group must differ from the live group `{group}`");
    }
    let planning: BaseConsumer = crate::kafka::consumer_config(&config, &group)
        .create()
        .context("creating the planning consumer")?;
    let plan = {
        let (topics, from, until) = (args.topics.clone(), args.from.clone(), args.until.clone());
        let (g, resume) = (group.clone(), args.resume);
        tokio::task::spawn_blocking(move || {
            build_plan(&planning, &topics, &from, &until, &g, resume)
        })
        .await??
    };
    print!("{}", plan.render());
    if args.dry_run {
        return Ok(RunSummary::default());
    }
    let metrics = Metrics::new().context("registering metrics")?;
    let todo: Vec<&PartitionPlan> = plan.partitions.iter().filter(|p| p.count() > 0).collect();
    for p in &plan.partitions {
        metrics
            .replay_remaining
            .with_label_values(&[&p.topic, &p.partition.to_string()])
            .set(p.count());
    }
    if todo.is_empty() {
        println!("nothing to replay");
        return Ok(RunSummary::default());
    }
    let health = Arc::new(Health::default());
    let http = crate::http::start(config.http.listen, metrics.clone(), health.clone()).await?;
    let options = RunOptions {
        group_id: group.clone(),
        output_topic: args
            .output_topic
            .clone()
            .unwrap_or_else(|| config.topics.output.clone()),
        subscription: Subscription::Bounded {
            starts: todo
                .iter()
                .map(|p| (p.topic.clone(), p.partition, p.start))
                .collect(),
            ends: todo
                .iter()
                .map(|p| ((p.topic.clone(), p.partition), p.end))
                .collect(),
        },
        extra_headers: vec![(REPLAY_HEADER.to_string(), group.clone().into_bytes())],
        rate_limit: args.rate,
    };
    let progress = tokio::spawn(report_progress(
        metrics.clone(),
        plan.total() as u64,
        shutdown.child_token(),
    ));
    let enricher = crate::cli::build_enricher(&config, &metrics)?;
    let started = std::time::Instant::now();
    let result = worker::run(
        config,
        options,
        enricher,
        metrics.clone(),
        health,
        shutdown.clone(),
    )
    .await;
    progress.abort();
    http.stop().await;
    let summary = result?;
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    println!(
        "{}",
        serde_json::json!({
            "replay_id": group, "planned": plan.total(), "consumed": summary.consumed,
            "produced": summary.produced, "dead_lettered": summary.dead_lettered,
            "unfinished": summary.unfinished, "seconds": secs,
            "articles_per_second": summary.consumed as f64 / secs,
            "complete": !shutdown.is_cancelled() && summary.unfinished == 0,
        })
    );
    Ok(summary)
}

/// A progress bar on a terminal, plain log lines otherwise.
async fn report_progress(metrics: Metrics, total: u64, stop: CancellationToken) {
    use std::io::IsTerminal;
    let done = || Metrics::total(&metrics.events_produced) + Metrics::total(&metrics.dead_lettered);
    let started = std::time::Instant::now();
    if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} eta {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        while !stop.is_cancelled() {
            bar.set_position(done());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bar.finish();
    } else {
        loop {
            tokio::select! { _ = stop.cancelled() => return, _ = tokio::time::sleep(Duration::from_secs(5)) => {} }
            let n = done();
            let rate = n as f64 / started.elapsed().as_secs_f64().max(1e-9);
            metrics.replay_rate.set(rate);
            info!(
                done = n,
                total,
                rate = format!("{rate:.0}/s"),
                "Replay progress"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_arguments_parse_and_reject_garbage() {
        assert_eq!(
            parse_offsets("a.b:0:5, c-d:12:0").unwrap(),
            vec![("a.b".into(), 0, 5), ("c-d".into(), 12, 0)]
        );
        assert!(parse_offsets("a:x:1").is_err());
        assert!(parse_offsets("a:1").is_err());
        assert!(parse_offsets("a:-1:3").is_err());
    }

    #[test]
    fn times_parse() {
        assert_eq!(parse_from("earliest").unwrap(), From::Earliest);
        assert!(matches!(
            parse_from("2024-05-01T00:00:00Z").unwrap(),
            From::Time(_)
        ));
        assert_eq!(parse_until("now").unwrap(), Until::Now);
        assert!(parse_until("yesterday").is_err());
    }

    #[test]
    fn clamp_keeps_ranges_inside_the_watermarks() {
        let b = Bounds { low: 10, high: 20 };
        assert_eq!(clamp(b, 0, 100), (10, 20));
        assert_eq!(clamp(b, 15, 12), (15, 15));
        assert_eq!(clamp(b, 25, 30), (20, 20));
    }
}
