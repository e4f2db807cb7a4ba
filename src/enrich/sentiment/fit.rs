//! Fitting the news weights: rated sentences (`id<TAB>rating<TAB>sentence`), their features,
//! article-grouped cross-validation and the ridge regression behind `model/sentiment_news.tsv`.

use std::collections::HashMap;

use super::metrics::pearson;
use super::model::{N_DENSE, SentimentModel};

/// One rated sentence.
#[derive(Debug, Clone)]
pub struct Rated {
    pub id: String,
    pub rating: f32,
    pub text: String,
}

/// Read the `id<TAB>rating<TAB>sentence` format.
pub fn read_tsv(text: &str) -> Vec<Rated> {
    text.lines()
        .filter_map(|l| {
            let mut p = l.splitn(3, '\t');
            let id = p.next()?.to_string();
            let rating = p.next()?.trim().parse().ok()?;
            Some(Rated {
                id,
                rating,
                text: p.next()?.to_string(),
            })
        })
        .collect()
}

/// Article of a sentence id (`article_sentence`).
pub fn article_of(id: &str) -> &str {
    id.split('_').next().unwrap_or(id)
}

/// Fixed columns of a fit: bias, VADER compound, pos, neg, then [`dense_features`].
const N_FIXED: usize = 4 + N_DENSE;

/// Rated sentences turned into features once, for fitting and cross-validation.
pub struct Prepared {
    /// Fixed columns per sentence.
    fixed: Vec<[f64; N_FIXED]>,
    /// Learned-feature keys per sentence (deduplicated).
    feats: Vec<Vec<u64>>,
    names: HashMap<u64, String>,
    y: Vec<f64>,
    ids: Vec<String>,
}

/// Features of rated sentences under `base` (VADER lexicon and valence table).
pub fn prepare(data: &[Rated], base: &SentimentModel) -> Prepared {
    let mut names = HashMap::new();
    let (mut fixed, mut feats) = (Vec::new(), Vec::new());
    for r in data {
        let toks = crate::enrich::tokenize::tokenize(&r.text);
        let words: Vec<&str> = toks.iter().map(|t| t.text(&r.text)).collect();
        let mut keys: Vec<u64> = Vec::new();
        let (v, dense) = base.scan(&words, |key, name, _| {
            if !keys.contains(&key) {
                keys.push(key);
                names.entry(key).or_insert_with(|| name.to_string());
            }
        });
        let mut row = [0.0; N_FIXED];
        row[..4].copy_from_slice(&[
            1.0,
            f64::from(v.compound),
            f64::from(v.pos),
            f64::from(v.neg),
        ]);
        row[4..].copy_from_slice(&dense);
        fixed.push(row);
        feats.push(keys);
    }
    Prepared {
        fixed,
        feats,
        names,
        y: data.iter().map(|r| f64::from(r.rating)).collect(),
        ids: data.iter().map(|r| r.id.clone()).collect(),
    }
}

impl Prepared {
    /// Number of sentences.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// Whether there are no sentences.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// Ridge fit on the sentences `idx`: fixed weights, then (key, weight) of features in at
    /// least `MIN_DF` of those sentences.
    fn fit(&self, idx: &[usize], lambda: f64) -> (Vec<f64>, Vec<(u64, f64)>) {
        let mut df: HashMap<u64, usize> = HashMap::new();
        for &i in idx {
            for &k in &self.feats[i] {
                *df.entry(k).or_default() += 1;
            }
        }
        let mut vocab: Vec<u64> = df
            .into_iter()
            .filter(|(_, c)| *c >= MIN_DF)
            .map(|(k, _)| k)
            .collect();
        vocab.sort_unstable();
        let index: HashMap<u64, usize> = vocab
            .iter()
            .enumerate()
            .map(|(i, &k)| (k, i + N_FIXED))
            .collect();
        let rows: Vec<Vec<(usize, f64)>> = idx
            .iter()
            .map(|&i| {
                let mut row: Vec<(usize, f64)> =
                    self.fixed[i].iter().copied().enumerate().collect();
                row.extend(
                    self.feats[i]
                        .iter()
                        .filter_map(|k| Some((*index.get(k)?, 1.0))),
                );
                row
            })
            .collect();
        let y: Vec<f64> = idx.iter().map(|&i| self.y[i]).collect();
        let w = ridge_cg(&rows, &y, vocab.len() + N_FIXED, lambda, N_FIXED);
        let words = vocab
            .into_iter()
            .zip(&w[N_FIXED..])
            .map(|(k, &x)| (k, x))
            .collect();
        (w[..N_FIXED].to_vec(), words)
    }

    /// Fitted weights as (name, weight) lines, for `model/sentiment_news.tsv`.
    fn weight_lines(&self, fixed: &[f64], words: &[(u64, f64)]) -> Vec<(String, f32)> {
        let mut out = vec![
            ("#bias".to_string(), fixed[0] as f32),
            ("#compound".to_string(), fixed[1] as f32),
            ("#pos".to_string(), fixed[2] as f32),
            ("#neg".to_string(), fixed[3] as f32),
        ];
        for j in 0..N_DENSE {
            out.push((format!("#d{j}"), fixed[4 + j] as f32));
        }
        let mut named: Vec<(String, f32)> = words
            .iter()
            .filter(|(_, x)| x.abs() >= 0.005)
            .filter_map(|(k, x)| Some((self.names.get(k)?.clone(), *x as f32)))
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        out.extend(named);
        out
    }

    /// Out-of-fold predictions of the sentences `idx`, split into `folds` by article with
    /// `salt`, for each λ of `grid` (predicted from the fitted features directly).
    fn inner_cv(&self, idx: &[usize], grid: &[f64], folds: usize, salt: u64) -> Vec<f64> {
        let fold: Vec<usize> = idx
            .iter()
            .map(|&i| fold_of(&self.ids[i], folds, salt))
            .collect();
        grid.iter()
            .map(|&lambda| {
                let mut pred = vec![0.0; idx.len()];
                for k in 0..folds {
                    let train: Vec<usize> = idx
                        .iter()
                        .zip(&fold)
                        .filter(|(_, f)| **f != k)
                        .map(|(&i, _)| i)
                        .collect();
                    let (fixed, words) = self.fit(&train, lambda);
                    let words: HashMap<u64, f64> = words.into_iter().collect();
                    for (j, &i) in idx.iter().enumerate() {
                        if fold[j] == k {
                            let mut r: f64 =
                                fixed.iter().zip(&self.fixed[i]).map(|(w, x)| w * x).sum();
                            r += self.feats[i]
                                .iter()
                                .filter_map(|k| words.get(k))
                                .sum::<f64>();
                            pred[j] = r.clamp(-4.0, 4.0);
                        }
                    }
                }
                let y: Vec<f64> = idx.iter().map(|&i| self.y[i]).collect();
                pearson(&pred, &y)
            })
            .collect()
    }

    /// λ of [`LAMBDA_GRID`] with the best article-grouped `folds`-fold CV Pearson r on the
    /// sentences `idx`, and the r of each λ.
    pub fn select_lambda(&self, idx: &[usize], folds: usize) -> (f64, Vec<f64>) {
        let scores = self.inner_cv(idx, LAMBDA_GRID, folds, INNER_SALT);
        let best = scores
            .iter()
            .enumerate()
            .fold(
                (0, f64::NEG_INFINITY),
                |b, (i, &s)| if s > b.1 { (i, s) } else { b },
            )
            .0;
        (LAMBDA_GRID[best], scores)
    }

    /// Fitted news weights on the sentences `idx`, as (name, weight) lines.
    pub fn fit_lines(&self, idx: &[usize], lambda: f64) -> Vec<(String, f32)> {
        let (fixed, words) = self.fit(idx, lambda);
        self.weight_lines(&fixed, &words)
    }

    /// Fold (0..folds) of sentence `i` in the article-grouped outer split.
    pub fn outer_fold(&self, i: usize, folds: usize) -> usize {
        fold_of(&self.ids[i], folds, OUTER_SALT)
    }
}

const OUTER_SALT: u64 = 7;
const INNER_SALT: u64 = 11;

/// Article-grouped fold of a sentence id.
fn fold_of(id: &str, folds: usize, salt: u64) -> usize {
    article_of(id)
        .bytes()
        .fold(salt, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))) as usize
        % folds
}

/// Weights from `Prepared::fit_lines` as a model.
pub fn with_weights(base: &SentimentModel, weights: &[(String, f32)]) -> SentimentModel {
    let text: String = weights.iter().map(|(k, v)| format!("{k}\t{v}\n")).collect();
    let mut m = base.clone();
    m.set_news(&text);
    m
}

/// Ridge regression by conjugate gradients on (XᵀX + λI) w = Xᵀy; the bias is not penalized
/// and the fixed (VADER and dense) features get a light penalty.
fn ridge_cg(
    rows: &[Vec<(usize, f64)>],
    y: &[f64],
    dim: usize,
    lambda: f64,
    n_dense: usize,
) -> Vec<f64> {
    let pen = |i: usize| {
        if i == 0 {
            1e-6
        } else if i < n_dense {
            DENSE_PENALTY
        } else {
            lambda
        }
    };
    let apply = |v: &[f64]| -> Vec<f64> {
        let mut out: Vec<f64> = (0..dim).map(|i| pen(i) * v[i]).collect();
        for r in rows {
            let dot: f64 = r.iter().map(|&(i, x)| x * v[i]).sum();
            for &(i, x) in r {
                out[i] += x * dot;
            }
        }
        out
    };
    let mut b = vec![0.0; dim];
    for (r, &yy) in rows.iter().zip(y) {
        for &(i, x) in r {
            b[i] += x * yy;
        }
    }
    let mut w = vec![0.0; dim];
    let mut r = b.clone();
    let mut p = r.clone();
    let mut rs: f64 = r.iter().map(|x| x * x).sum();
    for _ in 0..200 {
        if rs < 1e-12 {
            break;
        }
        let ap = apply(&p);
        let alpha = rs
            / p.iter()
                .zip(&ap)
                .map(|(a, b)| a * b)
                .sum::<f64>()
                .max(1e-300);
        for i in 0..dim {
            w[i] += alpha * p[i];
            r[i] -= alpha * ap[i];
        }
        let rs_new: f64 = r.iter().map(|x| x * x).sum();
        for i in 0..dim {
            p[i] = r[i] + rs_new / rs * p[i];
        }
        rs = rs_new;
    }
    w
}

/// Ridge penalties tried; the one used is chosen by article-grouped cross-validation on the
/// training sentences (inside each outer fold when evaluating).
pub const LAMBDA_GRID: &[f64] = &[16.0, 32.0, 64.0, 128.0, 256.0, 512.0];
/// Ridge penalty of the fixed (VADER and dense) features.
const DENSE_PENALTY: f64 = 1.0;
/// Minimum number of dev sentences a word must appear in to get a weight.
const MIN_DF: usize = 3;

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<&str> {
        s.split(' ').collect()
    }
    #[test]
    fn fitted_weights_reproduce_the_training_direction_through_the_hot_path() {
        let base = SentimentModel::vader_only();
        let mut data = Vec::new();
        for i in 0..12 {
            data.push(Rated {
                id: format!("{i}_1"),
                rating: 2.0,
                text: "the zorblat committee met today".to_string(),
            });
            data.push(Rated {
                id: format!("{i}_2"),
                rating: -2.0,
                text: "the quxxel committee met today".to_string(),
            });
        }
        let p = prepare(&data, &base);
        let all: Vec<usize> = (0..p.len()).collect();
        let (lambda, scores) = p.select_lambda(&all, 3);
        assert!(LAMBDA_GRID.contains(&lambda) && scores.len() == LAMBDA_GRID.len());
        let m = with_weights(&base, &p.fit_lines(&all, lambda));
        let (good, _) = m.rate(&words("a zorblat committee"));
        let (bad, _) = m.rate(&words("a quxxel committee"));
        assert!(good > 0.2 && bad < -0.2, "{good} {bad}");
    }
    /// Regenerate `model/sentiment_news.tsv` from the NYT dev set:
    /// `cargo test --release --lib regenerate_news_lexicon -- --ignored`.
    #[test]
    #[ignore]
    fn regenerate_news_lexicon() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/data/nyt-editorial-sentiment/dev.tsv"
        );
        let data = read_tsv(&std::fs::read_to_string(path).expect("dev.tsv"));
        let p = prepare(&data, &SentimentModel::vader_only());
        let all: Vec<usize> = (0..p.len()).collect();
        let (lambda, scores) = p.select_lambda(&all, 5);
        let mut text = format!(
            "# Learned news weights (ridge over VADER, dense and valence-table features, words and\n\
             # stems), fitted on NYT editorial dev.tsv; lambda {lambda} chosen by 5-fold\n\
             # article-grouped CV over {LAMBDA_GRID:?} (r {scores:.3?}).\n"
        );
        for (k, v) in p.fit_lines(&all, lambda) {
            text.push_str(&format!("{k}\t{v:.4}\n"));
        }
        let out = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/enrich/model/sentiment_news.tsv"
        );
        std::fs::write(out, text).expect("write");
    }
}
