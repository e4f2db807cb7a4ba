//! Evaluation of main-content extraction against ground truth, with the token-shingle
//! scoring of the public article-extraction benchmarks.
//!
//! Layout of a data directory: one `NAME.html` (the page, UTF-8) and one `NAME.txt` (the
//! expected article body as plain text) per page; pages without a `.txt` are skipped.
//!
//! Scoring: text is split into tokens (maximal runs of Unicode word characters, `\w+`),
//! tokens into shingles of [`SHINGLE`] consecutive tokens (a text with fewer tokens is one
//! shingle), and the shingles of the extracted and expected bodies are compared as
//! multisets: precision = shared / extracted, recall = shared / expected, F1 their harmonic
//! mean, per page; the report gives the means over pages. An empty expected body scores 1
//! when the extraction is empty too, else 0.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{extract, html_to_text};
use crate::normalize::text::clean_decoded_body;

/// Tokens per shingle.
pub const SHINGLE: usize = 4;

/// Why an evaluation could not run.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no NAME.html + NAME.txt pairs in {0}")]
    Empty(PathBuf),
}

/// Precision, recall and F1 of one page or their means.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Scores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

fn shingles(text: &str) -> HashMap<String, u32> {
    let tokens: Vec<&str> = text
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|t| !t.is_empty())
        .collect();
    let mut out = HashMap::new();
    if tokens.is_empty() {
        return out;
    }
    let n = tokens.len().saturating_sub(SHINGLE - 1).max(1);
    for i in 0..n {
        let end = (i + SHINGLE).min(tokens.len());
        *out.entry(tokens[i..end].join(" ")).or_insert(0) += 1;
    }
    out
}

/// Shingle precision, recall and F1 of `extracted` against `expected`.
pub fn score(expected: &str, extracted: &str) -> Scores {
    let truth = shingles(expected);
    let pred = shingles(extracted);
    let total = |m: &HashMap<String, u32>| m.values().map(|&v| f64::from(v)).sum::<f64>();
    let (t, p) = (total(&truth), total(&pred));
    if t == 0.0 {
        let v = if p == 0.0 { 1.0 } else { 0.0 };
        return Scores {
            precision: v,
            recall: v,
            f1: v,
        };
    }
    let shared: f64 = pred
        .iter()
        .map(|(s, &n)| f64::from(n.min(truth.get(s).copied().unwrap_or(0))))
        .sum();
    let precision = if p == 0.0 { 0.0 } else { shared / p };
    let recall = shared / t;
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    Scores {
        precision,
        recall,
        f1,
    }
}

/// One page's result.
#[derive(Debug, Clone)]
pub struct PageResult {
    pub name: String,
    pub extracted: Scores,
    pub whole_page: Scores,
    pub method: &'static str,
    pub elapsed: Duration,
}

/// The results over a data directory.
#[derive(Debug, Clone)]
pub struct Report {
    pub pages: Vec<PageResult>,
}

fn mean(pages: &[PageResult], f: impl Fn(&PageResult) -> Scores) -> Scores {
    let n = pages.len().max(1) as f64;
    let sum = pages.iter().map(&f).fold(Scores::default(), |a, s| Scores {
        precision: a.precision + s.precision,
        recall: a.recall + s.recall,
        f1: a.f1 + s.f1,
    });
    Scores {
        precision: sum.precision / n,
        recall: sum.recall / n,
        f1: sum.f1 / n,
    }
}

impl Report {
    /// Mean scores of the extracted bodies.
    pub fn extracted(&self) -> Scores {
        mean(&self.pages, |p| p.extracted)
    }

    /// Mean scores of the whole-page text (what newsflow produced before extraction).
    pub fn whole_page(&self) -> Scores {
        mean(&self.pages, |p| p.whole_page)
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for p in &self.pages {
            writeln!(
                f,
                "{:<32} f1 {:.3} p {:.3} r {:.3}  (whole page f1 {:.3})  {:<12} {:>8.2} ms",
                p.name,
                p.extracted.f1,
                p.extracted.precision,
                p.extracted.recall,
                p.whole_page.f1,
                p.method,
                p.elapsed.as_secs_f64() * 1000.0
            )?;
        }
        let n = self.pages.len().max(1) as f64;
        let total: f64 = self.pages.iter().map(|p| p.elapsed.as_secs_f64()).sum();
        let worst = self
            .pages
            .iter()
            .map(|p| p.elapsed.as_secs_f64())
            .fold(0.0, f64::max);
        for (label, s) in [
            ("extracted", self.extracted()),
            ("whole page", self.whole_page()),
        ] {
            writeln!(
                f,
                "{label:<10} pages {} f1 {:.3} precision {:.3} recall {:.3}",
                self.pages.len(),
                s.f1,
                s.precision,
                s.recall
            )?;
        }
        writeln!(
            f,
            "speed      {:.2} ms per page on average, {:.2} ms at worst",
            total / n * 1000.0,
            worst * 1000.0
        )
    }
}

fn read(path: &Path) -> Result<String, EvalError> {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|source| EvalError::Read {
            path: path.to_path_buf(),
            source,
        })
}

/// Evaluates every `NAME.html` + `NAME.txt` pair in `dir`, in name order.
pub fn evaluate_dir(dir: &Path) -> Result<Report, EvalError> {
    let entries = std::fs::read_dir(dir).map_err(|source| EvalError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut names: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "html") && p.with_extension("txt").is_file())
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(EvalError::Empty(dir.to_path_buf()));
    }
    let mut pages = Vec::with_capacity(names.len());
    for html_path in names {
        let html = read(&html_path)?;
        let expected = read(&html_path.with_extension("txt"))?;
        let start = Instant::now();
        let extraction = extract(&html);
        let body = clean_decoded_body(&extraction.text);
        let elapsed = start.elapsed();
        let whole = clean_decoded_body(&html_to_text(&html));
        pages.push(PageResult {
            name: html_path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            extracted: score(&expected, &body),
            whole_page: score(&expected, &whole),
            method: extraction.method.as_str(),
            elapsed,
        });
    }
    Ok(Report { pages })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shingle_scores_count_shared_four_token_runs() {
        let s = score("a b c d e", "a b c d e");
        assert_eq!(s.f1, 1.0);
        // Extracted has the 2 true shingles plus 2 more: precision 1/2, recall 1.
        let s = score("a b c d e", "a b c d e f g");
        assert_eq!((s.precision, s.recall), (0.5, 1.0));
        assert_eq!(score("a b c", "").f1, 0.0);
        assert_eq!(score("", "").f1, 1.0);
        // Fewer than four tokens: one shingle.
        assert_eq!(score("a, b", "a b").f1, 1.0);
    }

    #[test]
    fn the_dev_set_scores_better_extracted_than_whole() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/extraction");
        let report = evaluate_dir(&dir).unwrap();
        assert!(report.pages.len() >= 40);
        assert!(report.extracted().f1 > report.whole_page().f1, "{report}");
        // Today 0.968 (docs/benchmarks.md): a regression of a few points must fail here.
        assert!(report.extracted().f1 >= 0.95, "{report}");
    }
}
