//! Whole-article enrichment throughput (tokenize, tag, rules, cluster, sentiment) in tokens
//! per second on one core, next to the `vader_sentiment` crate alone on the same text.
//!
//! `cargo bench --bench enrich`

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use newsflow::enrich::{Document, Enricher, LocalEnricher, tokenize};

const SEED: &str = include_str!("../src/enrich/testdata/seed-article.txt");

fn article() -> (String, String) {
    let (title, rest) = SEED.split_once('\n').unwrap_or((SEED, ""));
    let body = rest.split("Leave a Reply").next().unwrap_or(rest).trim();
    (title.trim().to_string(), body.to_string())
}

fn tokens_per_second(tokens: usize, mut f: impl FnMut()) -> f64 {
    let started = Instant::now();
    let mut runs = 0usize;
    while started.elapsed().as_secs_f64() < 2.0 {
        f();
        runs += 1;
    }
    (tokens * runs) as f64 / started.elapsed().as_secs_f64()
}

fn bench(c: &mut Criterion) {
    let load = Instant::now();
    // The shipped model is embedded; failing to load it is a build defect.
    let enricher = LocalEnricher::load_default().expect("shipped model loads");
    let load_ms = load.elapsed().as_secs_f64() * 1e3;
    let (title, body) = article();
    let doc = Document {
        title: &title,
        body: &body,
        published: None,
        language: Some("en"),
    };
    let tokens = tokenize::tokenize(&title).len() + tokenize::tokenize(&body).len();
    let vader = vader_sentiment::SentimentIntensityAnalyzer::new();
    let text = format!("{title}\n\n{body}");

    let mut group = c.benchmark_group("seed_article");
    group.throughput(Throughput::Elements(tokens as u64));
    group.bench_function("newsflow_enrich_whole", |b| {
        b.iter(|| black_box(enricher.enrich(black_box(&doc))))
    });
    group.bench_function("vader_sentiment_crate_only", |b| {
        b.iter(|| black_box(vader.polarity_scores(black_box(&text))))
    });
    group.finish();

    let ours = tokens_per_second(tokens, || {
        black_box(enricher.enrich(black_box(&doc)));
    });
    let theirs = tokens_per_second(tokens, || {
        black_box(vader.polarity_scores(black_box(&text)));
    });
    println!("\nseed article: {tokens} tokens; model load {load_ms:.0} ms");
    println!("{:<44} {:>14}", "one core", "tokens/s");
    println!(
        "{:<44} {:>14.0}",
        "newsflow whole enrichment (NER+rules+sentiment)", ours
    );
    println!(
        "{:<44} {:>14.0}",
        "vader_sentiment crate (sentiment only)", theirs
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
