//! The `newsflow train ner`, `newsflow eval ner` and `newsflow eval sentiment` commands.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;

use super::conll::{self, Scorer};
use super::ner::{self, NerModel};

/// Hash-table size of the shipped model: 2^bits rows of 9 labels.
pub const DEFAULT_BITS: u32 = 20;

/// `newsflow train ner --data FILE... --output FILE [--epochs N]`.
pub fn train_ner(data: &[PathBuf], output: &Path, epochs: usize) -> anyhow::Result<()> {
    let mut docs = Vec::new();
    for path in data {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
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

/// `newsflow eval ner --data FILE.conll [--model FILE]`.
pub fn eval_ner(data: &Path, model: Option<&Path>) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(data).with_context(|| format!("reading {}", data.display()))?;
    let docs = conll::parse(&text);
    let load_started = Instant::now();
    let model = match model {
        Some(p) => {
            let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            NerModel::from_bytes(&bytes).with_context(|| format!("loading {}", p.display()))?
        }
        None => super::local::default_ner_model()?,
    };
    let load_ms = load_started.elapsed().as_secs_f64() * 1e3;
    let mut scorer = Scorer::default();
    let mut tokens = 0usize;
    let mut tag_secs = 0f64;
    for d in &docs {
        let sents: Vec<Vec<&str>> = d.sentences.iter().map(|s| s.iter().map(|(w, _)| w.as_str()).collect()).collect();
        tokens += sents.iter().map(Vec::len).sum::<usize>();
        let t = Instant::now();
        let pred = model.tag_document(&sents);
        tag_secs += t.elapsed().as_secs_f64();
        for (s, p) in d.sentences.iter().zip(&pred) {
            let gold: Vec<&str> = s.iter().map(|(_, t)| t.as_str()).collect();
            let tags: Vec<&str> = p.iter().map(|&l| ner::label_tag(l)).collect();
            scorer.add(&gold, &tags);
        }
    }
    let tps = tokens as f64 / tag_secs.max(1e-9);
    let o = scorer.overall;
    println!("{}: {} documents, {} tokens; model loaded in {load_ms:.0} ms", data.display(), docs.len(), tokens);
    println!(
        "accuracy {:.2}%; phrases: {} found, {} correct, {} in gold",
        100.0 * scorer.tokens_correct as f64 / scorer.tokens.max(1) as f64,
        o.predicted,
        o.correct,
        o.gold
    );
    println!("{:<8} {:>9} {:>9} {:>9} {:>7}", "type", "precision", "recall", "F1", "gold");
    let mut per_type = serde_json::Map::new();
    for (ty, c) in &scorer.per_type {
        println!(
            "{:<8} {:>9.2} {:>9.2} {:>9.2} {:>7}",
            ty,
            100.0 * c.precision(),
            100.0 * c.recall(),
            100.0 * c.f1(),
            c.gold
        );
        per_type.insert(
            ty.clone(),
            serde_json::json!({"precision": c.precision(), "recall": c.recall(), "f1": c.f1(),
                               "gold": c.gold, "predicted": c.predicted, "correct": c.correct}),
        );
    }
    println!(
        "{:<8} {:>9.2} {:>9.2} {:>9.2} {:>7}",
        "overall",
        100.0 * o.precision(),
        100.0 * o.recall(),
        100.0 * o.f1(),
        o.gold
    );
    println!("tagging speed: {tps:.0} tokens/s (one core)");
    let json = serde_json::json!({
        "f1": o.f1(), "precision": o.precision(), "recall": o.recall(), "per_type": per_type,
        "tokens": tokens, "tokens_per_second": tps, "model_load_ms": load_ms,
    });
    println!("{json}");
    Ok(())
}

/// `newsflow eval sentiment --data FILE.tsv`.
pub fn eval_sentiment(data: &Path) -> anyhow::Result<()> {
    let _ = data;
    anyhow::bail!("sentiment evaluation is not built yet")
}
