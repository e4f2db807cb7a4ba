//! Training: CoNLL documents to BILOU classes and leave-one-document-out gazetteer entries,
//! then a sum of averaged-perceptron runs over different document orders.

use super::NerModel;
use super::decode::{Averaged, decode_doc};
use super::features::{Tok, make_tok};
use super::labels::{N_CLASSES, type_index};
use super::lexicons::{EXT_LISTS, ExtGazetteer, GAZ_MAX, Gazetteer, seq_key};
use super::word_clusters::{Clusters, GloveClusters};
use super::{Pass, prepare};
use crate::enrich::conll::{ConllDoc, chunks};
use crate::enrich::hash::{IdMap, K};

// ---------------------------------------------------------------- training

struct TrainDoc {
    words: Vec<Vec<String>>,
    labels: Vec<Vec<u8>>,
    /// Gazetteer entries this document contributed (for leave-one-document-out).
    own: IdMap<[u8; 4]>,
}

fn to_train_doc(d: &ConllDoc, buf: &mut Vec<char>) -> TrainDoc {
    let mut words = Vec::new();
    let mut labels = Vec::new();
    let mut own: IdMap<[u8; 4]> = IdMap::default();
    for s in &d.sentences {
        let tags: Vec<&str> = s.iter().map(|(_, t)| t.as_str()).collect();
        let mut lab = vec![0u8; s.len()];
        for (a, b, ty) in chunks(&tags) {
            let Some(t) = type_index(&ty) else { continue };
            if b - a == 1 {
                lab[a] = 13 + t as u8;
            } else {
                lab[a] = 1 + t as u8;
                for l in &mut lab[a + 1..b - 1] {
                    *l = 5 + t as u8;
                }
                lab[b - 1] = 9 + t as u8;
            }
            if b - a <= GAZ_MAX {
                let key = seq_key(s[a..b].iter().map(|(w, _)| make_tok(w, buf).lower));
                own.entry(key).or_insert([0; 4])[t] = 1;
            }
        }
        words.push(s.iter().map(|(w, _)| w.clone()).collect());
        labels.push(lab);
    }
    TrainDoc { words, labels, own }
}

/// Perceptron runs (document orders) whose averaged weights are summed into the model.
const ENSEMBLE_RUNS: usize = 3;

/// Quantize weights to i16.
fn quantize(avg: &[f32]) -> Vec<i16> {
    let max = avg.iter().fold(0f32, |m, &x| m.max(x.abs())).max(1e-9);
    let scale = 32767.0 / max;
    avg.iter().map(|&x| (x * scale).round() as i16).collect()
}

/// One averaged-perceptron run over all documents (order shuffled by `seed`); both passes
/// train, the second on the document's own first-pass labels.
fn train_run(
    has_ext: bool,
    prepared: &[Vec<Vec<Tok>>],
    tdocs: &[TrainDoc],
    epochs: usize,
    bits: u32,
    seed: u64,
    progress: &mut dyn FnMut(usize, f64),
) -> Vec<f32> {
    let size = (1usize << bits) * N_CLASSES;
    let mut m = Averaged {
        w: vec![0f32; size],
        u: vec![0f64; size],
        c: 1.0,
        bits,
        errors: 0,
        total: 0,
    };
    let mut order: Vec<usize> = (0..tdocs.len()).collect();
    let mut rng = 0x2545_f491_4f6c_dd1du64 ^ seed.wrapping_mul(K);
    for epoch in 0..epochs {
        // Fisher-Yates with xorshift: reproducible.
        for i in (1..order.len()).rev() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            order.swap(i, (rng % (i as u64 + 1)) as usize);
        }
        m.errors = 0;
        m.total = 0;
        for &di in &order {
            let gold = Some(tdocs[di].labels.as_slice());
            let first = decode_doc(has_ext, &prepared[di], gold, &mut m, None);
            decode_doc(has_ext, &prepared[di], gold, &mut m, Some(&first));
            m.c += 1.0;
        }
        progress(epoch + 1, m.errors as f64 / m.total.max(1) as f64);
    }
    let (w, u, c) = (m.w, m.u, m.c);
    w.iter()
        .zip(&u)
        .map(|(&w, &u)| w - (u / c) as f32)
        .collect()
}

/// Train a model on CoNLL documents. Deterministic for given inputs.
///
/// Word clusters are learned from the training text itself (labels unused), next to the
/// embedded GloVe clusters; the gazetteer
/// from its entity strings (leave-one-document-out while training); the external lists are
/// filtered against the training text. The weights are the sum of [`ENSEMBLE_RUNS`]
/// averaged-perceptron runs over different document orders (each scaled to unit maximum).
pub fn train(
    docs: &[ConllDoc],
    epochs: usize,
    bits: u32,
    mut progress: impl FnMut(usize, f64),
) -> NerModel {
    let mut buf = Vec::new();
    let tdocs: Vec<TrainDoc> = docs.iter().map(|d| to_train_doc(d, &mut buf)).collect();
    let mut gazetteer = Gazetteer::default();
    for d in &tdocs {
        for (k, v) in &d.own {
            for (t, &x) in v.iter().enumerate() {
                if x > 0 {
                    gazetteer.add(*k, t);
                }
            }
        }
    }
    let (no_clusters, no_ext) = (Clusters::default(), ExtGazetteer::default());
    let glove = GloveClusters::embedded();
    let mut prepared: Vec<Vec<Vec<Tok>>> = tdocs
        .iter()
        .map(|d| {
            let sents: Vec<Vec<&str>> = d
                .words
                .iter()
                .map(|s| s.iter().map(String::as_str).collect())
                .collect();
            prepare(
                &sents,
                &gazetteer,
                &no_clusters,
                &no_ext,
                &glove,
                Pass::Training { own: &d.own },
            )
        })
        .collect();
    let clusters = Clusters::learn(prepared.iter().flatten());
    let ext = ExtGazetteer::build(&EXT_LISTS, prepared.iter().flatten());
    for d in &mut prepared {
        for s in d.iter_mut() {
            clusters.mark(s);
            ext.mark(s);
        }
    }
    let has_ext = !ext.map.is_empty();
    let mut sum = vec![0f32; (1usize << bits) * N_CLASSES];
    for run in 0..ENSEMBLE_RUNS {
        let avg = train_run(
            has_ext,
            &prepared,
            &tdocs,
            epochs,
            bits,
            run as u64,
            &mut |e, err| progress(run * epochs + e, err),
        );
        let max = avg.iter().fold(0f32, |m, &x| m.max(x.abs())).max(1e-9);
        for (s, x) in sum.iter_mut().zip(avg) {
            *s += x / max;
        }
    }
    NerModel {
        bits,
        weights: quantize(&sum),
        gazetteer,
        clusters,
        ext,
        glove,
    }
}
