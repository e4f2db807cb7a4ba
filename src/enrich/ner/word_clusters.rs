//! Word clusters: distributional clusters learned without labels from the training text, and
//! the embedded GloVe clusters.

use std::collections::HashMap;

use super::features::{Tok, normalize_char};
use crate::enrich::hash::{IdMap, fmix, hash_chars};

/// Cluster counts at the three granularities (fine, mid, coarse); the coarser levels cluster
/// the finer centroids, so the ids nest like Brown-cluster prefixes.
const CLUSTER_K: [usize; 3] = [384, 96, 24];
/// Most frequent words used as context dimensions (others fall into shape buckets).
const CLUSTER_CONTEXTS: usize = 1500;
/// Words seen fewer times than this get no cluster.
const CLUSTER_MIN_COUNT: u32 = 3;
const CLUSTER_ITERS: usize = 12;

/// Distributional word clusters: lower-case word → (fine, mid, coarse) cluster id + 1,
/// learned without labels from the training text by spherical k-means over left and right
/// neighbour-word counts.
#[derive(Debug, Clone, Default)]
pub struct Clusters {
    pub(super) map: IdMap<[u16; 3]>,
}

fn dot_sparse(c: &[f32], v: &[(u32, f32)]) -> f32 {
    v.iter().map(|&(i, x)| c[i as usize] * x).sum()
}

fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// Spherical k-means over sparse unit vectors; returns the assignment and the centroids.
fn kmeans_sparse(vecs: &[Vec<(u32, f32)>], dim: usize, k: usize) -> (Vec<usize>, Vec<Vec<f32>>) {
    let n = vecs.len();
    let mut cents: Vec<Vec<f32>> = (0..k)
        .map(|j| {
            let mut c = vec![0f32; dim];
            for &(i, x) in &vecs[j * n / k] {
                c[i as usize] = x;
            }
            c
        })
        .collect();
    let mut assign = vec![0usize; n];
    for _ in 0..CLUSTER_ITERS {
        for (a, v) in assign.iter_mut().zip(vecs) {
            let mut best = (f32::MIN, 0);
            for (j, c) in cents.iter().enumerate() {
                let d = dot_sparse(c, v);
                if d > best.0 {
                    best = (d, j);
                }
            }
            *a = best.1;
        }
        let mut sums = vec![vec![0f32; dim]; k];
        for (&a, v) in assign.iter().zip(vecs) {
            for &(i, x) in v {
                sums[a][i as usize] += x;
            }
        }
        for (c, mut s) in cents.iter_mut().zip(sums) {
            if s.iter().any(|&x| x != 0.0) {
                normalize(&mut s);
                *c = s;
            }
        }
    }
    (assign, cents)
}

/// Spherical k-means over dense unit vectors (the finer level's centroids).
fn kmeans_dense(vecs: &[Vec<f32>], k: usize) -> Vec<usize> {
    let sparse: Vec<Vec<(u32, f32)>> = vecs
        .iter()
        .map(|v| {
            v.iter()
                .enumerate()
                .filter(|(_, x)| **x != 0.0)
                .map(|(i, &x)| (i as u32, x))
                .collect()
        })
        .collect();
    let dim = vecs.first().map_or(0, Vec::len);
    kmeans_sparse(&sparse, dim, k).0
}

impl Clusters {
    pub(super) fn mark(&self, toks: &mut [Tok]) {
        if self.map.is_empty() {
            return;
        }
        for t in toks {
            if let Some(c) = self.map.get(&t.lower) {
                t.clus = *c;
            }
        }
    }

    /// Learn clusters from unlabeled sentences.
    pub(super) fn learn<'a>(sentences: impl Iterator<Item = &'a Vec<Tok>> + Clone) -> Clusters {
        let mut freq: IdMap<u32> = IdMap::default();
        for s in sentences.clone() {
            for t in s {
                *freq.entry(t.lower).or_default() += 1;
            }
        }
        let mut by_freq: Vec<(u32, u64)> = freq.iter().map(|(&w, &c)| (c, w)).collect();
        by_freq.sort_unstable_by(|a, b| b.cmp(a));
        let ctx_index: IdMap<u32> = by_freq
            .iter()
            .take(CLUSTER_CONTEXTS)
            .enumerate()
            .map(|(i, &(_, w))| (w, i as u32))
            .collect();
        let side = CLUSTER_CONTEXTS as u32 + 33;
        let ctx = |t: Option<&Tok>| -> u32 {
            match t {
                None => CLUSTER_CONTEXTS as u32 + 32,
                Some(t) => ctx_index
                    .get(&t.lower)
                    .copied()
                    .unwrap_or(CLUSTER_CONTEXTS as u32 + (fmix(t.sshape) % 32) as u32),
            }
        };
        let words: Vec<u64> = by_freq
            .iter()
            .filter(|&&(c, _)| c >= CLUSTER_MIN_COUNT)
            .map(|&(_, w)| w)
            .collect();
        if words.len() < CLUSTER_K[0] * 2 {
            return Clusters::default();
        }
        let windex: IdMap<usize> = words.iter().enumerate().map(|(i, &w)| (w, i)).collect();
        let mut counts: Vec<HashMap<u32, f32>> = vec![HashMap::new(); words.len()];
        for s in sentences {
            for (i, t) in s.iter().enumerate() {
                let Some(&wi) = windex.get(&t.lower) else {
                    continue;
                };
                let l = ctx(i.checked_sub(1).and_then(|j| s.get(j)));
                let r = side + ctx(s.get(i + 1));
                *counts[wi].entry(l).or_default() += 1.0;
                *counts[wi].entry(r).or_default() += 1.0;
            }
        }
        let vecs: Vec<Vec<(u32, f32)>> = counts
            .into_iter()
            .map(|m| {
                let mut v: Vec<(u32, f32)> = m.into_iter().map(|(i, c)| (i, c.sqrt())).collect();
                v.sort_unstable_by_key(|&(i, _)| i);
                let n = v.iter().map(|(_, x)| x * x).sum::<f32>().sqrt();
                v.iter_mut().for_each(|(_, x)| *x /= n);
                v
            })
            .collect();
        let (fine, cents) = kmeans_sparse(&vecs, 2 * side as usize, CLUSTER_K[0]);
        let mid = kmeans_dense(&cents, CLUSTER_K[1]);
        let mut mid_cents = vec![vec![0f32; 2 * side as usize]; CLUSTER_K[1]];
        for (c, &m) in cents.iter().zip(&mid) {
            for (a, &x) in mid_cents[m].iter_mut().zip(c) {
                *a += x;
            }
        }
        mid_cents.iter_mut().for_each(|c| normalize(c));
        let coarse = kmeans_dense(&mid_cents, CLUSTER_K[2]);
        let map = words
            .iter()
            .zip(&fine)
            .map(|(&w, &f)| {
                let m = mid[f];
                (w, [f as u16 + 1, m as u16 + 1, coarse[m] as u16 + 1])
            })
            .collect();
        Clusters { map }
    }
}

// ---------------------------------------------------------------- GloVe word clusters

/// Nested spherical k-means clusters (4096 / 1024 / 256 / 64) of the GloVe 6B 100-d vectors
/// of the 200,000 most frequent words, generated by `model/make_glove_clusters.py`: one line
/// per fine cluster, `fine mid coarse coarsest<TAB>words`.
const GLOVE_CLUSTERS: &str = include_str!("../model/glove_clusters.txt");

/// Lower-case word → GloVe cluster ids + 1, parsed from the embedded text when a model loads.
#[derive(Clone)]
pub(super) struct GloveClusters(IdMap<[u16; 4]>);

impl GloveClusters {
    pub(super) fn embedded() -> GloveClusters {
        GloveClusters(parse_glove(GLOVE_CLUSTERS))
    }

    pub(super) fn mark(&self, toks: &mut [Tok]) {
        for t in toks {
            // GloVe is lower-case: a capital initial ("S Jaishankar") would share the clusters
            // of the clitic "s" or the article "a"; it keeps its shape instead (`glove_id`).
            if t.initial {
                continue;
            }
            if let Some(g) = self.0.get(&t.lower) {
                t.glove = *g;
            }
        }
    }
}

fn parse_glove(text: &str) -> IdMap<[u16; 4]> {
    let mut map = IdMap::default();
    map.reserve(200_000);
    let mut buf = Vec::with_capacity(32);
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((head, words)) = line.split_once('\t') else {
            continue;
        };
        let mut ids = [0u16; 4];
        for (slot, x) in ids.iter_mut().zip(head.split_whitespace()) {
            *slot = x.parse::<u16>().map_or(0, |v| v.saturating_add(1));
        }
        for w in words.split_whitespace() {
            buf.clear();
            buf.extend(w.chars().map(normalize_char).map(|c| {
                if c.is_uppercase() {
                    c.to_lowercase().next().unwrap_or(c)
                } else {
                    c
                }
            }));
            map.entry(hash_chars(&buf)).or_insert(ids);
        }
    }
    map
}
