//! `newsflow eval ner` and `newsflow eval sentiment`: accuracy figures on labelled data.

use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;

use crate::enrich::conll::{self, Scorer};
use crate::enrich::ner::{self, NerModel};
use crate::enrich::sentiment::{self, SentimentModel};
use crate::enrich::tokenize;

/// `newsflow eval ner --data FILE.conll [--model FILE]`.
pub fn eval_ner(data: &Path, model: Option<&Path>) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(data).with_context(|| format!("reading {}", data.display()))?;
    let docs = conll::parse(&text);
    let load_started = Instant::now();
    let model = match model {
        Some(p) => {
            let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            NerModel::from_bytes(&bytes).with_context(|| format!("loading {}", p.display()))?
        }
        None => crate::enrich::local::default_ner_model()?,
    };
    let load_ms = load_started.elapsed().as_secs_f64() * 1e3;
    let mut scorer = Scorer::default();
    let mut tokens = 0usize;
    let mut tag_secs = 0f64;
    for d in &docs {
        let sents: Vec<Vec<&str>> = d
            .sentences
            .iter()
            .map(|s| s.iter().map(|(w, _)| w.as_str()).collect())
            .collect();
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
    println!(
        "{}: {} documents, {} tokens; model loaded in {load_ms:.0} ms",
        data.display(),
        docs.len(),
        tokens
    );
    println!(
        "accuracy {:.2}%; phrases: {} found, {} correct, {} in gold",
        100.0 * scorer.tokens_correct as f64 / scorer.tokens.max(1) as f64,
        o.predicted,
        o.correct,
        o.gold
    );
    println!(
        "{:<8} {:>9} {:>9} {:>9} {:>7}",
        "type", "precision", "recall", "F1", "gold"
    );
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

/// Ratings and classes of a sentiment model over rated sentences.
fn rate_all(model: &SentimentModel, data: &[sentiment::Rated]) -> Vec<f64> {
    data.iter()
        .map(|r| {
            let toks = tokenize::tokenize(&r.text);
            let words: Vec<&str> = toks.iter().map(|t| t.text(&r.text)).collect();
            f64::from(model.rate(&words).0)
        })
        .collect()
}

fn figures(gold: &[f64], pred: &[f64]) -> (f64, f64) {
    let gc: Vec<i8> = gold.iter().map(|&g| sentiment::class(g, 0.5)).collect();
    let pc: Vec<i8> = pred
        .iter()
        .map(|&p| sentiment::class(p, SENTIMENT_CLASS_THRESHOLD))
        .collect();
    (
        sentiment::pearson(gold, pred),
        sentiment::macro_f1(&gc, &pc),
    )
}

/// Predicted ratings above this are positive, below its negative negative.
pub const SENTIMENT_CLASS_THRESHOLD: f64 = 0.5;

/// Article-grouped k-fold cross-validation of the news fit: out-of-fold predictions and the
/// λ used in each fold. Everything fitted on ratings (weights, vocabulary, λ) is fitted on the
/// training folds only: λ by an inner article-grouped 4-fold CV on those sentences.
fn cross_validate(
    data: &[sentiment::Rated],
    base: &SentimentModel,
    folds: usize,
) -> (Vec<f64>, Vec<f64>) {
    let prepared = sentiment::prepare(data, base);
    let mut pred = vec![0.0; data.len()];
    let mut lambdas = Vec::new();
    for k in 0..folds {
        let train: Vec<usize> = (0..data.len())
            .filter(|&i| prepared.outer_fold(i, folds) != k)
            .collect();
        let (lambda, _) = prepared.select_lambda(&train, 4);
        lambdas.push(lambda);
        let model = sentiment::with_weights(base, &prepared.fit_lines(&train, lambda));
        for (i, r) in data.iter().enumerate() {
            if prepared.outer_fold(i, folds) == k {
                pred[i] = rate_all(&model, std::slice::from_ref(r))[0];
            }
        }
    }
    (pred, lambdas)
}

/// `newsflow eval sentiment --data FILE.tsv`.
pub fn eval_sentiment(data: &Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(data).with_context(|| format!("reading {}", data.display()))?;
    let rows = sentiment::read_tsv(&text);
    anyhow::ensure!(rows.len() >= 2, "no rated sentences in {}", data.display());
    let gold: Vec<f64> = rows.iter().map(|r| f64::from(r.rating)).collect();
    println!("{}: {} sentences", data.display(), rows.len());

    let analyzer = vader_sentiment::SentimentIntensityAnalyzer::new();
    let crate_pred: Vec<f64> = rows
        .iter()
        .map(|r| analyzer.polarity_scores(&r.text)["compound"])
        .collect();
    let (r_crate, f_crate) = figures(
        &gold,
        &crate_pred.iter().map(|x| x * 4.0).collect::<Vec<_>>(),
    );
    println!(
        "vader_sentiment crate (compound):      pearson r {r_crate:.3}  macro F1 {f_crate:.3}"
    );

    let base = SentimentModel::vader_only();
    let (r_v, f_v) = figures(&gold, &rate_all(&base, &rows));
    println!("newsflow VADER re-implementation:      pearson r {r_v:.3}  macro F1 {f_v:.3}");

    let (cv_pred, lambdas) = cross_validate(&rows, &base, 5);
    let cv_best = figures(&gold, &cv_pred);
    println!(
        "news fit, 5-fold CV by article (λ chosen inside each training fold: {lambdas:?}): \
         pearson r {:.3}  macro F1 {:.3}",
        cv_best.0, cv_best.1
    );

    let shipped = SentimentModel::load_default();
    let started = Instant::now();
    let pred = rate_all(&shipped, &rows);
    let secs = started.elapsed().as_secs_f64();
    let (r, f) = figures(&gold, &pred);
    println!(
        "shipped news model (fitted on NYT dev; in-sample if this is dev.tsv): pearson r {r:.3}  macro F1 {f:.3}"
    );
    let json = serde_json::json!({
        "pearson_r": r, "macro_f1": f, "sentences": rows.len(),
        "cv_pearson_r": cv_best.0, "cv_macro_f1": cv_best.1,
        "vader_crate_pearson_r": r_crate, "vader_crate_macro_f1": f_crate,
        "vader_reimpl_pearson_r": r_v, "sentences_per_second": rows.len() as f64 / secs.max(1e-9),
    });
    println!("{json}");
    Ok(())
}

/// `newsflow eval extraction --data DIR`: main-content extraction against ground truth.
pub fn eval_extraction(data: &Path) -> anyhow::Result<()> {
    let report = crate::normalize::html::eval::evaluate_dir(data)?;
    print!("{report}");
    Ok(())
}
