//! Start-up wiring, in one place: load the config, build the enricher, start the operations
//! server, run the worker, stop. `run`, `replay`, `demo`, the benches and the tests all go
//! through here.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, EnricherKind};
use crate::enrich::Enricher;
use crate::enrich::baseline::BaselineEnricher;
use crate::health::Health;
use crate::http::Running as HttpServer;
use crate::metrics::Metrics;
use crate::worker::{self, RunOptions, RunSummary};

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
/// (with the local engine as its fallback), else the local engine. Needs a tokio runtime.
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

/// A worker's operations side: its metrics, its health and the HTTP server that shows them.
pub struct App {
    pub metrics: Metrics,
    pub health: Arc<Health>,
    http: Option<HttpServer>,
}

impl App {
    /// Registers the metrics and starts the operations server on `http.listen`.
    pub async fn start(config: &Config) -> anyhow::Result<App> {
        let mut app = App::without_server()?;
        app.http = Some(
            crate::http::start(config.http.listen, app.metrics.clone(), app.health.clone()).await?,
        );
        Ok(app)
    }

    /// Metrics and health without an HTTP server (tests and benches).
    pub fn without_server() -> anyhow::Result<App> {
        Ok(App {
            metrics: Metrics::new().context("registering metrics")?,
            health: Arc::new(Health::default()),
            http: None,
        })
    }

    /// Runs the worker with `enricher` (default: the configured one) until `shutdown` or,
    /// for a bounded run, the end; then stops the operations server.
    pub async fn run(
        self,
        config: Config,
        options: RunOptions,
        enricher: Option<Arc<dyn Enricher>>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<RunSummary> {
        let enricher = match enricher {
            Some(e) => e,
            None => build_enricher(&config, &self.metrics)?,
        };
        let result = worker::run(
            config,
            options,
            enricher,
            self.metrics.clone(),
            self.health.clone(),
            shutdown,
        )
        .await;
        if let Some(http) = self.http {
            http.stop().await;
        }
        result
    }
}

/// Starts the operations server and the live worker; returns when the worker has stopped.
pub async fn run_live(config: Config, shutdown: CancellationToken) -> anyhow::Result<RunSummary> {
    let app = App::start(&config).await?;
    let options = RunOptions::live(&config);
    app.run(config, options, None, shutdown).await
}
