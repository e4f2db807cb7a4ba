//! Replay's arguments: where a replay starts and ends, parsed from the command line.

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};

use crate::cli::ReplayCli;
use crate::config::Config;

/// Where a replay starts.
#[derive(Debug, Clone, PartialEq)]
pub enum Start {
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
pub fn parse_from(s: &str) -> anyhow::Result<Start> {
    if s == "earliest" {
        return Ok(Start::Earliest);
    }
    Ok(Start::Time(parse_time(s)?))
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

/// Options of one replay.
#[derive(Debug, Clone)]
pub struct ReplayArgs {
    pub topics: Vec<String>,
    pub from: Start,
    pub until: Until,
    pub group: Option<String>,
    pub resume: bool,
    pub output_topic: Option<String>,
    pub rate: Option<f64>,
    pub dry_run: bool,
}

impl ReplayArgs {
    /// Resolves the command line against the config: `--from-offsets` wins over `--from`,
    /// `--until-offsets` over `--until`, topics default to `topics.input`.
    pub fn resolve(cli: ReplayCli, config: &Config) -> anyhow::Result<ReplayArgs> {
        let from = match (cli.from, cli.from_offsets) {
            (_, Some(o)) => Start::Offsets(parse_offsets(&o)?),
            (Some(f), None) => parse_from(&f)?,
            (None, None) if cli.resume => Start::Earliest,
            (None, None) => bail!("replay needs --from or --from-offsets"),
        };
        let until = match (cli.until, cli.until_offsets) {
            (_, Some(o)) => Until::Offsets(parse_offsets(&o)?),
            (Some(u), None) => parse_until(&u)?,
            (None, None) => Until::Now,
        };
        let topics = cli
            .topic
            .as_deref()
            .unwrap_or(&config.topics.input)
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(String::from)
            .collect();
        Ok(ReplayArgs {
            topics,
            from,
            until,
            group: cli.group,
            resume: cli.resume,
            output_topic: cli.output_topic,
            rate: cli.rate,
            dry_run: cli.dry_run,
        })
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
        assert_eq!(parse_from("earliest").unwrap(), Start::Earliest);
        assert!(matches!(
            parse_from("2024-05-01T00:00:00Z").unwrap(),
            Start::Time(_)
        ));
        assert_eq!(parse_until("now").unwrap(), Until::Now);
        assert!(parse_until("yesterday").is_err());
    }
}
