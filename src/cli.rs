//! The command line, parsed: what the user asked for. Acting on it is `commands`' job.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::LogFormat;

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
    Replay(ReplayCli),
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

/// `newsflow replay` as typed: resolved into a plan by `commands::replay`.
#[derive(Debug, Args)]
pub struct ReplayCli {
    #[arg(long, env = "NEWSFLOW_CONFIG", default_value = "config/default.toml")]
    pub config: PathBuf,
    /// `earliest` or an RFC 3339 time (resolved per partition).
    #[arg(long, conflicts_with = "from_offsets")]
    pub from: Option<String>,
    /// `topic:partition:offset,...`
    #[arg(long)]
    pub from_offsets: Option<String>,
    /// `now` (the high watermarks at start; default) or an RFC 3339 time.
    #[arg(long, conflicts_with = "until_offsets")]
    pub until: Option<String>,
    /// `topic:partition:offset,...` (exclusive ends).
    #[arg(long)]
    pub until_offsets: Option<String>,
    /// Topics to replay (comma-separated); default `topics.input`.
    #[arg(long)]
    pub topic: Option<String>,
    /// Consumer group of the replay; default `<group_id>-replay-<timestamp>`.
    #[arg(long)]
    pub group: Option<String>,
    /// Continue an interrupted replay from the group's committed offsets.
    #[arg(long, requires = "group")]
    pub resume: bool,
    #[arg(long)]
    pub output_topic: Option<String>,
    /// Articles per second.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Print the per-partition plan and exit.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
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
