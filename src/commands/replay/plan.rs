//! Replay's plan: the offsets to read per partition, resolved against the broker once, at
//! start.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::args::{Start, Until};

const TIMEOUT: Duration = Duration::from_secs(15);

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
    from: &Start,
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
        Start::Earliest => bounds.iter().map(|(k, b)| (k.clone(), b.low)).collect(),
        Start::Time(time) => offsets_for_time(consumer, &parts, *time, &bounds)?,
        Start::Offsets(list) => explicit(list, &bounds, "--from-offsets")?,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamp_keeps_ranges_inside_the_watermarks() {
        let b = Bounds { low: 10, high: 20 };
        assert_eq!(clamp(b, 0, 100), (10, 20));
        assert_eq!(clamp(b, 15, 12), (15, 15));
        assert_eq!(clamp(b, 25, 30), (20, 20));
    }
}
