//! One file per command: each loads what it needs, installs logging and calls the engines.
//! Nothing here is imported by an engine.

pub mod check_config;
pub mod demo;
pub mod enrich;
pub mod eval;
pub mod replay;
pub mod run;
pub mod train;

use crate::cli::{Command, EvalCommand, TrainCommand};

/// Runs a parsed command.
pub async fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run { config, log_format } => run::command(&config, log_format).await,
        Command::Enrich {
            input,
            output,
            enricher,
        } => enrich::command(input, output, enricher).await,
        Command::Demo { full } => demo::command(full).await,
        Command::Replay(args) => replay::command(args).await,
        Command::CheckConfig { config } => check_config::command(&config),
        Command::Train {
            what:
                TrainCommand::Ner {
                    data,
                    output,
                    epochs,
                },
        } => train::train_ner(&data, &output, epochs),
        Command::Eval {
            what: EvalCommand::Ner { data, model },
        } => eval::eval_ner(&data, model.as_deref()),
        Command::Eval {
            what: EvalCommand::Sentiment { data },
        } => eval::eval_sentiment(&data),
        Command::Eval {
            what: EvalCommand::Extraction { data },
        } => eval::eval_extraction(&data),
    }
}
