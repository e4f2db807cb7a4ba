//! `newsflow replay`: a bounded run of the same pipeline over a range of a topic, in its own
//! consumer group with manual assignment, so the live group's offsets and assignment are
//! never touched.
//!
//! Planning (which offsets to read per partition) is resolved against the broker once, at
//! start: `--until now` captures the high watermarks then, so the run ends even while
//! producers keep writing.

pub mod args;
pub mod plan;

use std::time::Duration;

use anyhow::{Context as _, bail};
use chrono::Utc;
use rdkafka::consumer::BaseConsumer;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::app::{App, load_config};
use crate::cli::ReplayCli;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::telemetry::init_logging;
use crate::worker::{RunOptions, RunSummary, Subscription};

pub use args::{ReplayArgs, Start, Until, parse_from, parse_offsets, parse_until};
pub use plan::{PartitionPlan, ReplayPlan, build_plan};

/// Header on every replayed event, carrying the replay id.
pub const REPLAY_HEADER: &str = "newsflow.replay.id";

/// `newsflow replay`: loads the config, installs logging, resolves the arguments, runs.
pub async fn command(cli: ReplayCli) -> anyhow::Result<()> {
    let config = load_config(&cli.config)?;
    init_logging(
        cli.log_format.unwrap_or(config.log.format),
        &config.log.level,
    );
    let args = ReplayArgs::resolve(cli, &config)?;
    let shutdown = CancellationToken::new();
    crate::shutdown::on_signal(shutdown.clone());
    run(config, args, shutdown).await.map(|_| ())
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
    if let Some(out) = &args.output_topic {
        // Writing into a topic being replayed would feed the replay its own events.
        if args.topics.contains(out) || *out == config.topics.dead_letter {
            bail!("--output-topic `{out}` must differ from the replayed and dead-letter topics");
        }
    }
    let planning: BaseConsumer = crate::kafka::consumer_config(&config, &group)
        .create()
        .map_err(|e| anyhow::anyhow!(config.redact(&e.to_string())))
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
    let todo: Vec<&PartitionPlan> = plan.partitions.iter().filter(|p| p.count() > 0).collect();
    if todo.is_empty() {
        println!("nothing to replay");
        return Ok(RunSummary::default());
    }
    let app = App::start(&config).await?;
    let metrics = app.metrics.clone();
    for p in &plan.partitions {
        metrics
            .replay_remaining
            .with_label_values(&[&p.topic, &p.partition.to_string()])
            .set(p.count());
    }
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
    let started = std::time::Instant::now();
    let result = app.run(config, options, None, shutdown.clone()).await;
    progress.abort();
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
