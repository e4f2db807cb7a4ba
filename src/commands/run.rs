//! `newsflow run`: the live worker until SIGTERM or Ctrl-C.

use std::path::Path;

use tokio_util::sync::CancellationToken;

use crate::app::{load_config, run_live};
use crate::config::LogFormat;
use crate::telemetry::init_logging;

/// Loads the config, installs logging and signal handling, runs the worker.
pub async fn command(config: &Path, log_format: Option<LogFormat>) -> anyhow::Result<()> {
    let config = load_config(config)?;
    init_logging(log_format.unwrap_or(config.log.format), &config.log.level);
    let shutdown = CancellationToken::new();
    crate::shutdown::on_signal(shutdown.clone());
    run_live(config, shutdown).await.map(|_| ())
}
