//! Greedy left-to-right decoding of a document over hashed weights: quantized weights when
//! tagging, averaged-perceptron weights (with updates) when training.

use super::features::{
    ALL, Ctx, DYNAMIC, DocState, Feats, SPLIT, Tok, TokenState, features, initial_runs,
    is_allcaps_sentence,
};
use super::labels::{N_CLASSES, class_type};
use crate::enrich::hash::{IdMap, fmix_top};

/// The weight row of feature hash `h` in a table of `2^bits` rows.
#[inline]
fn row_index(h: u64, bits: u32) -> usize {
    fmix_top(h, bits) as usize
}

#[inline]
fn bucket(h: u64, bits: u32) -> usize {
    row_index(h, bits) * N_CLASSES
}

/// Label scores for a token, and (when training) the perceptron update.
pub(super) trait Weights {
    fn score(&mut self, feats: &[u64]) -> [f32; N_CLASSES];
    fn update(&mut self, _feats: &[u64], _gold: u8, _pred: u8) {}
    /// A decoding pass over the document starts.
    fn start_pass(&mut self) {}
    /// Scores of one token; every feature is left in `feats` (for [`Weights::update`]).
    fn score_token(
        &mut self,
        ctx: &Ctx<'_>,
        t: &TokenState<'_>,
        feats: &mut Feats,
    ) -> [f32; N_CLASSES] {
        features::<ALL>(ctx, t, feats);
        self.score(&feats.v)
    }
}

/// The shipped weights. The static features' scores of each token are summed in the first
/// pass and reused in the second, which then reads only the rows of the label-dependent
/// features; integer sums make this exactly the full sum.
pub(super) struct Quantized<'a> {
    /// The weights as rows of one `i16` per class.
    rows: &'a [[i16; N_CLASSES]],
    bits: u32,
    /// Static-feature scores per token of the document, in decoding order.
    statics: Vec<[i32; N_CLASSES]>,
    /// Tokens scored in the current pass.
    next: usize,
}

impl<'a> Quantized<'a> {
    pub(super) fn new(w: &'a [i16], bits: u32) -> Quantized<'a> {
        Quantized {
            rows: w.as_chunks().0,
            bits,
            statics: Vec::new(),
            next: 0,
        }
    }

    #[inline]
    fn add(&self, acc: &mut [i32; N_CLASSES], feats: &[u64]) {
        add_rows(self.rows, self.bits, acc, feats);
    }
}

/// Adds the weight rows of `feats` to `acc`: the tagger's inner loop. Compiled for AVX2 and
/// SSE4.1 besides the x86-64 baseline and picked once at run time (the `multiversion`
/// crate), so widening the 17 `i16` classes to `i32` takes two instructions per row instead
/// of SSE2's unpack-and-shift; integer sums, so every version gives the same scores.
#[multiversion::multiversion(targets("x86_64+avx2", "x86_64+sse4.1"))]
fn add_rows(rows: &[[i16; N_CLASSES]], bits: u32, acc: &mut [i32; N_CLASSES], feats: &[u64]) {
    // A local copy stays in registers across the loop.
    let mut sum = *acc;
    for &h in feats {
        if let Some(row) = rows.get(row_index(h, bits)) {
            for (a, &x) in sum.iter_mut().zip(row) {
                *a += i32::from(x);
            }
        }
    }
    *acc = sum;
}

impl Weights for Quantized<'_> {
    #[inline]
    fn score(&mut self, feats: &[u64]) -> [f32; N_CLASSES] {
        let mut acc = [0i32; N_CLASSES];
        self.add(&mut acc, feats);
        acc.map(|x| x as f32)
    }

    fn start_pass(&mut self) {
        self.next = 0;
    }

    fn score_token(
        &mut self,
        ctx: &Ctx<'_>,
        t: &TokenState<'_>,
        feats: &mut Feats,
    ) -> [f32; N_CLASSES] {
        let acc = match self.statics.get(self.next) {
            Some(s) => {
                features::<DYNAMIC>(ctx, t, feats);
                let mut acc = *s;
                self.add(&mut acc, &feats.v);
                acc
            }
            None => {
                features::<SPLIT>(ctx, t, feats);
                let mut s = [0i32; N_CLASSES];
                self.add(&mut s, &feats.v);
                self.statics.push(s);
                let mut acc = s;
                self.add(&mut acc, &feats.dynamic);
                acc
            }
        };
        self.next += 1;
        acc.map(|x| x as f32)
    }
}

pub(super) struct Averaged {
    pub(super) w: Vec<f32>,
    pub(super) u: Vec<f64>,
    pub(super) c: f64,
    pub(super) bits: u32,
    pub(super) errors: usize,
    pub(super) total: usize,
}

impl Weights for Averaged {
    fn score(&mut self, feats: &[u64]) -> [f32; N_CLASSES] {
        self.total += 1;
        let mut acc = [0f32; N_CLASSES];
        for &h in feats {
            let b = bucket(h, self.bits);
            for (a, &x) in acc.iter_mut().zip(&self.w[b..b + N_CLASSES]) {
                *a += x;
            }
        }
        acc
    }
    fn update(&mut self, feats: &[u64], g: u8, p: u8) {
        self.errors += 1;
        for &h in feats {
            let b = bucket(h, self.bits);
            self.w[b + g as usize] += 1.0;
            self.u[b + g as usize] += self.c;
            self.w[b + p as usize] -= 1.0;
            self.u[b + p as usize] -= self.c;
        }
    }
}

/// Greedy decoding of one document; with `gold`, also trains.
pub(super) fn decode_doc<W: Weights>(
    ext: bool,
    toks: &[Vec<Tok>],
    gold: Option<&[Vec<u8>]>,
    weights: &mut W,
    first: Option<&[Vec<u8>]>,
) -> Vec<Vec<u8>> {
    let mut doc = DocState::default();
    doc.scan(toks);
    let clusters = toks.iter().flatten().any(|t| t.clus[0] != 0);
    // Second pass: how the first pass labelled each capitalised word across the article.
    let mut agg: IdMap<[u16; 4]> = IdMap::default();
    if let Some(first) = first {
        for (s, labs) in toks.iter().zip(first) {
            for (t, &l) in s.iter().zip(labs) {
                if let Some(ty) = class_type(l)
                    && (t.cap || t.allcaps)
                {
                    // Saturating: a field can repeat one word up to 65,536 times (the
                    // token cap), one more than a u16 holds.
                    let count = &mut agg.entry(t.lower).or_insert([0; 4])[ty];
                    *count = count.saturating_add(1);
                }
            }
        }
    }
    weights.start_pass();
    let mut feats = Feats::new();
    let mut runs = Vec::new();
    let mut out = Vec::with_capacity(toks.len());
    for (si, s) in toks.iter().enumerate() {
        initial_runs(s, &mut runs);
        let ctx = Ctx {
            toks: s,
            allcaps_sentence: is_allcaps_sentence(s),
            clusters,
            ext,
            initial_runs: &runs,
        };
        let mut labels = Vec::with_capacity(s.len());
        let (mut p1, mut p2) = (0u8, 0u8);
        for i in 0..s.len() {
            let hist = doc.history.get(&s[i].lower).copied().unwrap_or(0);
            let mut others = agg.get(&s[i].lower).copied().unwrap_or([0; 4]);
            if let Some(t) = first.and_then(|f| class_type(f[si][i])) {
                others[t] = others[t].saturating_sub(1);
            }
            let majority = (0..4)
                .filter(|&t| others[t] > 0)
                .max_by_key(|&t| (others[t], 4 - t))
                .map_or(0, |t| t as u8 + 1);
            let state = TokenState {
                i,
                p1,
                p2,
                hist,
                majority,
                doc: &doc,
            };
            let sc = weights.score_token(&ctx, &state, &mut feats);
            let mut best = 0u8;
            for l in 1..N_CLASSES {
                if sc[l] > sc[best as usize] {
                    best = l as u8;
                }
            }
            if let Some(g) = gold {
                let gl = g[si][i];
                if gl != best {
                    weights.update(&feats.v, gl, best);
                }
            }
            if let Some(t) = class_type(best)
                && (s[i].cap || s[i].allcaps)
            {
                doc.history.insert(s[i].lower, t as u8 + 1);
            }
            labels.push(best);
            p2 = p1;
            p1 = best;
        }
        out.push(labels);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped weights scored feature by feature, without the static-score cache.
    struct Plain<'a>(Quantized<'a>);
    impl Weights for Plain<'_> {
        fn score(&mut self, feats: &[u64]) -> [f32; N_CLASSES] {
            self.0.score(feats)
        }
    }

    #[test]
    fn cached_static_scores_decode_exactly_like_full_scoring() {
        let model = crate::enrich::local::default_ner_model().expect("shipped model loads");
        let text = "MOSCOW (Reuters) - Russian Foreign Minister Sergey Lavrov met S Jaishankar \
                    on Tuesday . Lavrov said the Shanghai Cooperation Organisation would meet \
                    in New Delhi . INDIA AND RUSSIA SIGN DEAL";
        let sentences: Vec<Vec<&str>> = text.split(" . ").map(|s| s.split(' ').collect()).collect();
        let toks = model.prepared(&sentences);
        let ext = !model.ext.map.is_empty();
        let mut cached = Quantized::new(&model.weights, model.bits);
        let mut plain = Plain(Quantized::new(&model.weights, model.bits));
        let first = decode_doc(ext, &toks, None, &mut cached, None);
        assert_eq!(first, decode_doc(ext, &toks, None, &mut plain, None));
        assert_eq!(
            decode_doc(ext, &toks, None, &mut cached, Some(&first)),
            decode_doc(ext, &toks, None, &mut plain, Some(&first))
        );
        assert!(first.iter().flatten().any(|&c| c != 0));
    }
}
