//! Logging: the process-wide `tracing` subscriber (the one global newsflow has).

use crate::config::LogFormat;

/// Installs the global log subscriber, writing to stderr. `RUST_LOG` wins over `level`.
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
    install_panic_hook();
}

/// Replaces the default panic output (free text on stderr, which for a record caught and
/// dead-lettered by the pipeline could quote its content) with one structured log line
/// naming where it happened. The pipeline's own rejection says which record it was.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let thread = std::thread::current();
        tracing::error!(
            location,
            thread = thread.name().unwrap_or("unnamed"),
            "Panic caught; see the dead-letter record or the error that follows"
        );
    }));
}
