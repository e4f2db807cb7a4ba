//! `newsflow enrich`: the same normalize and enrich pipeline over a file, without Kafka.
//! Input is JSON Lines (one article per line) or one plain-text article; output is one
//! event per line. Rejected lines are reported on stderr and the run goes on.

use std::io::{BufWriter, Read, Write};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use chrono::Utc;
use rayon::prelude::*;

use crate::app::build_local_enricher;
use crate::cli::EnricherArg;
use crate::config::{EnricherKind, LogFormat};
use crate::enrich::Enricher;
use crate::event::Provenance;
use crate::pipeline::Processor;
use crate::telemetry::init_logging;

/// Articles per parallel batch (keeps output ordered and memory bounded).
const BATCH: usize = 256;
/// The file mode's size limit matches the worker's default.
const MAX_BYTES: usize = 1 << 20;

/// `newsflow enrich`: builds the chosen engine and runs [`run`] off the async runtime.
pub async fn command(input: String, output: String, enricher: EnricherArg) -> anyhow::Result<()> {
    init_logging(LogFormat::Text, "warn");
    let kind = match enricher {
        EnricherArg::Local => EnricherKind::Local,
        EnricherArg::Baseline => EnricherKind::Baseline,
    };
    let enricher = build_local_enricher(kind)?;
    tokio::task::spawn_blocking(move || run(&input, &output, enricher))
        .await
        .context("enrich task failed")?
}

/// Runs the pipeline over a file; `-` is stdin or stdout.
pub fn run(input: &str, output: &str, enricher: Arc<dyn Enricher>) -> anyhow::Result<()> {
    let mut data = Vec::new();
    if input == "-" {
        std::io::stdin()
            .read_to_end(&mut data)
            .context("reading stdin")?;
    } else {
        data = std::fs::read(input).with_context(|| format!("reading {input}"))?;
    }
    let records = split_records(&data);
    let out: Box<dyn Write> = if output == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::fs::File::create(output).with_context(|| format!("creating {output}"))?)
    };
    let mut out = BufWriter::new(out);
    let processor = Processor::new(enricher, MAX_BYTES);
    let started = Instant::now();
    let (mut ok, mut rejected, mut words) = (0usize, 0usize, 0usize);
    for (batch_no, chunk) in records.chunks(BATCH).enumerate() {
        let results: Vec<_> = chunk
            .par_iter()
            .enumerate()
            .map(|(i, value)| {
                let line = batch_no * BATCH + i + 1;
                let provenance = Provenance {
                    topic: format!("file:{input}"),
                    partition: 0,
                    offset: line as i64,
                    timestamp: None,
                };
                let (result, _) = processor.process(value, provenance, Utc::now());
                (
                    line,
                    result.map(|e| (e.word_count, serde_json::to_string(&e))),
                )
            })
            .collect();
        for (line, result) in results {
            match result {
                Ok((count, Ok(json))) => {
                    ok += 1;
                    words += count;
                    writeln!(out, "{json}").context("writing output")?;
                }
                Ok((_, Err(e))) => anyhow::bail!("cannot serialize event: {e}"),
                Err(r) => {
                    rejected += 1;
                    eprintln!(
                        "{}",
                        serde_json::json!({"line": line, "reason": r.reason, "error": r.message})
                    );
                }
            }
        }
    }
    out.flush().context("writing output")?;
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    eprintln!(
        "{}",
        serde_json::json!({
            "articles": ok, "rejected": rejected, "words": words, "seconds": secs,
            "articles_per_second": ok as f64 / secs, "words_per_second": words as f64 / secs,
        })
    );
    Ok(())
}

/// JSON Lines when the first non-blank character is `{`; otherwise one text article.
fn split_records(data: &[u8]) -> Vec<&[u8]> {
    let first = data.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        data.split(|&b| b == b'\n')
            .filter(|l| l.iter().any(|b| !b.is_ascii_whitespace()))
            .collect()
    } else {
        vec![data]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_split_per_line_and_text_is_one_article() {
        assert_eq!(split_records(b"{\"a\":1}\n\n{\"b\":2}\n").len(), 2);
        assert_eq!(split_records(b"Title\n{not json}\nbody").len(), 1);
    }
}
