//! The command line: parse arguments, load config, install logging, dispatch.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, EnricherKind, LogFormat};
use crate::enrich::Enricher;
use crate::enrich::baseline::BaselineEnricher;
use crate::kafka::Health;
use crate::metrics::Metrics;
use crate::worker::{self, RunOptions};

/// newsflow: Kafka news articles in, normalized and enriched events out.
#[derive(Debug, Parser)]
#[command(name = "newsflow", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the streaming worker.
    Run {
        #[arg(long, env = "NEWSFLOW_CONFIG", default_value = "config/default.toml")]
        config: PathBuf,
        /// Overrides `log.format`.
        #[arg(long, value_enum)]
        log_format: Option<LogFormat>,
    },
    /// Normalize and enrich articles from a file without Kafka: JSON Lines (one article per
    /// line) or one plain-text article; writes events as JSON Lines.
    Enrich {
        #[arg(long, default_value = "-")]
        input: String,
        #[arg(long, default_value = "-")]
        output: String,
        /// Enrichment engine.
        #[arg(long, value_enum, default_value = "local")]
        enricher: EnricherArg,
    },
    /// Run the worker against an embedded in-process Kafka cluster with the sample
    /// articles, print the events and a metrics summary, and exit.
    Demo {
        /// Print whole events instead of a summary line per event.
        #[arg(long)]
        full: bool,
    },
    /// Reprocess a range of the input topic (bounded, in its own consumer group).
    Replay {
        #[arg(long, env = "NEWSFLOW_CONFIG", default_value = "config/default.toml")]
        config: PathBuf,
        /// `earliest` or an RFC 3339 time (resolved per partition).
        #[arg(long, conflicts_with = "from_offsets")]
        from: Option<String>,
        /// `topic:partition:offset,...`
        #[arg(long)]
        from_offsets: Option<String>,
        /// `now` (the high watermarks at start; default) or an RFC 3339 time.
        #[arg(long, conflicts_with = "until_offsets")]
        until: Option<String>,
        /// `topic:partition:offset,...` (exclusive ends).
        #[arg(long)]
        until_offsets: Option<String>,
        /// Topics to replay (comma-separated); default `topics.input`.
        #[arg(long)]
        topic: Option<String>,
        /// Consumer group of the replay; default `<group_id>-replay-<timestamp>`.
        #[arg(long)]
        group: Option<String>,
        /// Continue an interrupted replay from the group's committed offsets.
        #[arg(long, requires = "group")]
        resume: bool,
        #[arg(long)]
        output_topic: Option<String>,
        /// Articles per second.
        #[arg(long)]
        rate: Option<f64>,
        /// Print the per-partition plan and exit.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_enum)]
        log_format: Option<LogFormat>,
    },
    /// Validate the configuration and print it with secrets masked.
    CheckConfig {
        #[arg(long, env = "NEWSFLOW_CONFIG", default_value = "config/default.toml")]
        config: PathBuf,
    },
    /// Train a model.
    Train {
        #[command(subcommand)]
        what: TrainCommand,
    },
    /// Evaluate a model against labelled data.
    Eval {
        #[command(subcommand)]
        what: EvalCommand,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum EnricherArg {
    Local,
    Baseline,
}

#[derive(Debug, Subcommand)]
pub enum TrainCommand {
    /// Train the NER tagger on CoNLL-format files.
    Ner {
        #[arg(long, required = true)]
        data: Vec<PathBuf>,
        #[arg(long)]
        output: PathBuf,
        #[arg(long, default_value_t = 15)]
        epochs: usize,
    },
}

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// NER precision, recall and F1 (conlleval rules) on a CoNLL file.
    Ner {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        model: Option<PathBuf>,
    },
    /// Sentiment Pearson r and macro F1 against human ratings (TSV: id, rating, text).
    Sentiment {
        #[arg(long)]
        data: PathBuf,
    },
    /// Main-content extraction shingle F1 against ground truth (DIR/NAME.html + NAME.txt).
    Extraction {
        #[arg(long)]
        data: PathBuf,
    },
}

/// Installs the global log subscriber (the one process-wide global newsflow has).
pub fn init_logging(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Loads the config file with the process environment's overrides.
pub fn load_config(path: &Path) -> anyhow::Result<Config> {
    Ok(Config::load(path, std::env::vars())?)
}

/// Builds the configured local enrichment engine.
pub fn build_local_enricher(kind: EnricherKind) -> anyhow::Result<Arc<dyn Enricher>> {
    Ok(match kind {
        EnricherKind::Local => {
            Arc::new(crate::enrich::LocalEnricher::load_default().context("loading the NER model")?)
        }
        EnricherKind::Baseline => Arc::new(BaselineEnricher),
    })
}

/// Builds the enricher a worker runs: the remote model when `[enrich.remote]` is set
/// (with the local engine as its fallback), else the local engine.
pub fn build_enricher(config: &Config, metrics: &Metrics) -> anyhow::Result<Arc<dyn Enricher>> {
    let local = build_local_enricher(config.pipeline.enricher)?;
    match &config.enrich.remote {
        None => Ok(local),
        Some(remote) => Ok(Arc::new(crate::remote::RemoteEnricher::new(
            remote.clone(),
            local,
            metrics.clone(),
            tokio::runtime::Handle::current(),
        )?)),
    }
}

/// Runs a parsed command.
pub async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run { config, log_format } => {
            let config = load_config(&config)?;
            init_logging(log_format.unwrap_or(config.log.format), &config.log.level);
            let shutdown = CancellationToken::new();
            crate::shutdown::on_signal(shutdown.clone());
            run_worker(config, shutdown).await.map(|_| ())
        }
        Command::Enrich {
            input,
            output,
            enricher,
        } => {
            init_logging(LogFormat::Text, "warn");
            let kind = match enricher {
                EnricherArg::Local => EnricherKind::Local,
                EnricherArg::Baseline => EnricherKind::Baseline,
            };
            let enricher = build_local_enricher(kind)?;
            tokio::task::spawn_blocking(move || crate::batch::run(&input, &output, enricher))
                .await
                .context("enrich task failed")?
        }
        Command::Demo { full } => {
            init_logging(LogFormat::Text, "warn");
            crate::demo::run(full).await
        }
        Command::Replay {
            config,
            from,
            from_offsets,
            until,
            until_offsets,
            topic,
            group,
            resume,
            output_topic,
            rate,
            dry_run,
            log_format,
        } => {
            let config = load_config(&config)?;
            init_logging(log_format.unwrap_or(config.log.format), &config.log.level);
            let from = match (from, from_offsets) {
                (_, Some(o)) => crate::replay::From::Offsets(crate::replay::parse_offsets(&o)?),
                (Some(f), None) => crate::replay::parse_from(&f)?,
                (None, None) if resume => crate::replay::From::Earliest,
                (None, None) => anyhow::bail!("replay needs --from or --from-offsets"),
            };
            let until = match (until, until_offsets) {
                (_, Some(o)) => crate::replay::Until::Offsets(crate::replay::parse_offsets(&o)?),
                (Some(u), None) => crate::replay::parse_until(&u)?,
                (None, None) => crate::replay::Until::Now,
            };
            let topics = topic
                .as_deref()
                .unwrap_or(&config.topics.input)
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(String::from)
                .collect();
            let args = crate::replay::ReplayArgs {
                topics,
                from,
                until,
                group,
                resume,
                output_topic,
                rate,
                dry_run,
            };
            let shutdown = CancellationToken::new();
            crate::shutdown::on_signal(shutdown.clone());
            crate::replay::run(config, args, shutdown).await.map(|_| ())
        }
        Command::CheckConfig { config } => {
            let config = load_config(&config)?;
            print!("{}", config.to_masked_toml());
            Ok(())
        }
        Command::Train {
            what:
                TrainCommand::Ner {
                    data,
                    output,
                    epochs,
                },
        } => crate::enrich::commands::train_ner(&data, &output, epochs),
        Command::Eval {
            what: EvalCommand::Ner { data, model },
        } => crate::enrich::commands::eval_ner(&data, model.as_deref()),
        Command::Eval {
            what: EvalCommand::Sentiment { data },
        } => crate::enrich::commands::eval_sentiment(&data),
        Command::Eval {
            what: EvalCommand::Extraction { data },
        } => crate::normalize::html::eval::run(&data),
    }
}

/// Starts the HTTP server and the live worker; returns when the worker has stopped.
pub async fn run_worker(
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<worker::RunSummary> {
    let metrics = Metrics::new().context("registering metrics")?;
    let health = Arc::new(Health::default());
    let http = crate::http::start(config.http.listen, metrics.clone(), health.clone()).await?;
    let enricher = build_enricher(&config, &metrics)?;
    let options = RunOptions::live(&config);
    let result = worker::run(config, options, enricher, metrics, health, shutdown).await;
    http.stop().await;
    result
}
