//! `newsflow train ner`: trains the NER tagger on CoNLL-format files.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;

use crate::enrich::conll;
use crate::enrich::ner;

/// Hash-table size of the shipped model: 2^bits rows of 17 BILOU classes.
pub const DEFAULT_BITS: u32 = 19;

/// `newsflow train ner --data FILE... --output FILE [--epochs N]`.
pub fn train_ner(data: &[PathBuf], output: &Path, epochs: usize) -> anyhow::Result<()> {
    let mut docs = Vec::new();
    for path in data {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let d = conll::parse(&text);
        println!("{}: {} documents", path.display(), d.len());
        docs.extend(d);
    }
    anyhow::ensure!(!docs.is_empty(), "no CoNLL documents in the training data");
    let started = Instant::now();
    let model = ner::train(&docs, epochs, DEFAULT_BITS, |epoch, err| {
        println!("epoch {epoch}: training token error rate {err:.4}");
    });
    let bytes = model.to_bytes();
    std::fs::write(output, &bytes).with_context(|| format!("writing {}", output.display()))?;
    println!(
        "trained in {:.1}s; wrote {} ({:.1} MB)",
        started.elapsed().as_secs_f64(),
        output.display(),
        bytes.len() as f64 / 1e6
    );
    Ok(())
}
