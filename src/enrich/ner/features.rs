//! Per-token information ([`Tok`], computed once per token) and the hashed feature templates
//! the perceptron scores: the word and its shapes, neighbours, previous labels, lexicon and
//! word-cluster matches, and document-level evidence.

use std::collections::HashSet;
use std::hash::BuildHasherDefault;

use crate::enrich::hash::{IdHasher, IdMap, SEED, hash_chars, step};

/// What the features need to know about one token, computed once per token.
#[derive(Debug, Clone, Default)]
pub(super) struct Tok {
    pub(super) word: u64,
    pub(super) lower: u64,
    pub(super) shape: u64,
    pub(super) sshape: u64,
    pub(super) pre: [u64; 4],
    pub(super) suf: [u64; 4],
    /// First char upper-case.
    pub(super) cap: bool,
    /// Has letters and all of them upper-case.
    pub(super) allcaps: bool,
    /// A capital letter alone or with a period (`S`, `W.`).
    pub(super) initial: bool,
    /// Bit `3*t + k` set: a gazetteer entry of type t begins (k=0), continues (k=1), or is
    /// exactly this token (k=2).
    pub(super) gaz: u16,
    /// Word-cluster ids (fine, mid, coarse), each 1 + id; 0 when the word has no cluster.
    pub(super) clus: [u16; 3],
    /// GloVe word-cluster ids (4096, 1024, 256, 64 clusters), each 1 + id; 0 when none.
    pub(super) glove: [u16; 4],
    /// Bit `3*l + k`: an entry of external list l begins (k=0), continues (k=1), or is
    /// exactly this token (k=2).
    pub(super) ext: u16,
}

pub(super) fn normalize_char(c: char) -> char {
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

pub(super) fn make_tok(word: &str, buf: &mut Vec<char>) -> Tok {
    // One pass over the normalized characters: the word's hash, its case counts and shapes,
    // and its lower-case form (left in `buf`).
    buf.clear();
    let mut word_h = SEED;
    let (mut first, mut second, mut n) = ('\0', '\0', 0usize);
    let mut cap = false;
    let (mut letters, mut uppers) = (0usize, 0usize);
    let mut shape = 0xabcdu64;
    let mut sshape = 0x1234u64;
    let mut last = '\0';
    let mut run = 0;
    for c in word.chars().map(normalize_char) {
        word_h = step(word_h, c as u64);
        match n {
            0 => first = c,
            1 => second = c,
            _ => {}
        }
        let upper = c.is_uppercase();
        if c.is_alphabetic() {
            letters += 1;
            if upper {
                uppers += 1;
                if n == 0 {
                    cap = true;
                }
            }
        }
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
        buf.push(if upper {
            c.to_lowercase().next().unwrap_or(c)
        } else {
            c
        });
        n += 1;
    }
    let initial = (n == 1 || (n == 2 && second == '.')) && first.is_uppercase();
    let mut lower = SEED;
    let mut prefixes = [SEED; 5];
    for (j, &c) in buf.iter().enumerate() {
        lower = step(lower, c as u64);
        if let Some(p) = prefixes.get_mut(j + 1) {
            *p = lower;
        }
    }
    let mut pre = [0u64; 4];
    let mut suf = [0u64; 4];
    for k in 0..4 {
        let m = (k + 1).min(n);
        pre[k] = step(prefixes[m], 0x70 + k as u64);
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

/// Document-level state while tagging one article.
#[derive(Default)]
pub(super) struct DocState {
    /// Lower-case word → last entity type (1 + t) predicted for it in this document.
    pub(super) history: IdMap<u8>,
    /// Lower-case words seen capitalised away from a sentence start (in mixed-case text).
    pub(super) cap_seen: HashSet<u64, BuildHasherDefault<IdHasher>>,
    /// Lower-case words seen in lower case (in mixed-case text).
    pub(super) low_seen: HashSet<u64, BuildHasherDefault<IdHasher>>,
}

impl DocState {
    pub(super) fn scan(&mut self, sentences: &[Vec<Tok>]) {
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

pub(super) struct Ctx<'a> {
    pub(super) toks: &'a [Tok],
    pub(super) allcaps_sentence: bool,
    /// The model has word clusters (else their features are left out).
    pub(super) clusters: bool,
    /// The model has external lists.
    pub(super) ext: bool,
    /// Per token, where the run of initials just before it starts ([`initial_runs`]).
    pub(super) initial_runs: &'a [usize],
}

/// For each token, the index where the run of initials right before it starts, or the token's
/// own index when the token before is not an initial. One pass, so the features never walk
/// back (a sentence of initials made that walk quadratic).
pub(super) fn initial_runs(toks: &[Tok], out: &mut Vec<usize>) {
    out.clear();
    let mut start = 0;
    for (i, t) in toks.iter().enumerate() {
        out.push(if i > 0 && toks[i - 1].initial {
            start
        } else {
            i
        });
        if !t.initial {
            start = i + 1;
        }
    }
}

const NONE: u64 = 0x5555;

/// What one token's features need besides the sentence context.
pub(super) struct TokenState<'a> {
    pub(super) i: usize,
    pub(super) p1: u8,
    pub(super) p2: u8,
    pub(super) hist: u8,
    pub(super) majority: u8,
    pub(super) doc: &'a DocState,
}

/// Which features [`features`] emits, a const generic parameter so each mode is compiled on
/// its own: every one, in the order training used (`ALL`); only the label-dependent ones
/// (`DYNAMIC`); or all, split in two (`SPLIT`): the static part (what does not depend on
/// predicted labels or the document's label history, so it is the same in both tagging passes
/// and its scores are summed once) in `v`, the rest in `dynamic`.
pub(super) const ALL: u8 = 0;
pub(super) const DYNAMIC: u8 = 1;
pub(super) const SPLIT: u8 = 2;

/// Templates that read the previous labels, the label history or the first pass's majority.
fn is_dynamic(template: u64) -> bool {
    matches!(template, 16..=19 | 24 | 32 | 40..=42 | 50..=52 | 66 | 89 | 97)
}

/// The feature lists of one token, reused from token to token.
pub(super) struct Feats {
    pub(super) v: Vec<u64>,
    /// The label-dependent features, in mode [`SPLIT`].
    pub(super) dynamic: Vec<u64>,
}

impl Feats {
    pub(super) fn new() -> Feats {
        Feats {
            v: Vec::with_capacity(96),
            dynamic: Vec::with_capacity(32),
        }
    }
}

/// Emits one feature as mode `M` wants it: every one into `v` (`ALL`), only label-dependent
/// ones into `v` (`DYNAMIC`), or static ones into `v` and label-dependent ones into `dynamic`
/// (`SPLIT`). Always inlined so that, with the template a constant at every call, the choice
/// and the template's half of the hash are settled at compile time, and a feature the mode
/// drops costs nothing (its value is pure, and unused).
#[inline(always)]
fn f<const M: u8>(out: &mut Feats, template: u64, v: u64) {
    let dynamic = is_dynamic(template);
    if M == DYNAMIC && !dynamic {
        return;
    }
    let h = step(step(0x1f2e_3d4c, template), v);
    if M == SPLIT && dynamic {
        out.dynamic.push(h);
    } else {
        out.v.push(h);
    }
}

/// The features of a token in mode `M` ([`ALL`], [`DYNAMIC`] or [`SPLIT`]), replacing what
/// `out` held: every template, in training order, emitted as the mode wants (see [`f`]).
pub(super) fn features<const M: u8>(ctx: &Ctx<'_>, state: &TokenState<'_>, out: &mut Feats) {
    out.v.clear();
    out.dynamic.clear();
    let &TokenState {
        i,
        p1,
        p2,
        hist,
        majority,
        doc,
    } = state;
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
    f::<M>(out, 0, 0);
    f::<M>(out, 1, t.word);
    f::<M>(out, 2, t.lower);
    f::<M>(out, 3, t.shape);
    f::<M>(out, 4, t.sshape);
    for k in 0..4 {
        f::<M>(out, 5, t.pre[k]);
        f::<M>(out, 6, t.suf[k]);
    }
    f::<M>(out, 7, low(-1));
    f::<M>(out, 8, low(1));
    f::<M>(out, 9, low(-2));
    f::<M>(out, 10, low(2));
    f::<M>(out, 11, shp(-1));
    f::<M>(out, 12, shp(1));
    f::<M>(out, 13, step(low(-1), t.lower));
    f::<M>(out, 14, step(t.lower, low(1)));
    f::<M>(out, 15, step(step(shp(-1), t.sshape), shp(1)));
    f::<M>(out, 16, u64::from(p1));
    f::<M>(out, 17, u64::from(p1) * 32 + u64::from(p2));
    f::<M>(out, 18, step(u64::from(p1), t.lower));
    f::<M>(out, 19, step(u64::from(p1), t.sshape));
    f::<M>(out, 20, step(u64::from(i == 0), t.sshape));
    if ctx.allcaps_sentence {
        f::<M>(out, 21, t.lower);
        f::<M>(out, 22, step(low(-1), t.lower));
    }
    f::<M>(out, 23, step(t.sshape, shp(1)));
    f::<M>(out, 24, step(u64::from(p1), shp(1)));
    f::<M>(out, 25, at(1).map_or(NONE, |n| n.suf[2]));
    {
        // The word before a run of initials ("Minister S Jaishankar", "George W. Bush").
        let j = ctx.initial_runs.get(i).copied().unwrap_or(i);
        if j < i {
            let before = j.checked_sub(1).map_or(NONE, |k| ctx.toks[k].lower);
            f::<M>(out, 27, before);
            f::<M>(out, 28, step(before, t.sshape));
        }
    }
    f::<M>(out, 26, at(-1).map_or(NONE, |n| n.suf[2]));
    // gazetteer, own and neighbours'
    let g = t.gaz;
    if g != 0 {
        for b in 0..12 {
            if g & (1 << b) != 0 {
                f::<M>(out, 30, b);
                f::<M>(out, 31, step(b, t.sshape));
                f::<M>(out, 32, step(b, u64::from(p1)));
            }
        }
    } else {
        f::<M>(out, 30, 99);
    }
    let gn = at(1).map_or(0, |n| n.gaz);
    let gp = at(-1).map_or(0, |n| n.gaz);
    f::<M>(out, 33, u64::from(gn));
    f::<M>(out, 34, u64::from(gp));
    // distributional word clusters, own and neighbours'
    if ctx.clusters {
        let c = t.clus;
        f::<M>(out, 60, u64::from(c[0]));
        f::<M>(out, 61, u64::from(c[1]));
        f::<M>(out, 62, u64::from(c[2]));
        f::<M>(out, 63, step(u64::from(c[1]), t.sshape));
        f::<M>(out, 64, at(-1).map_or(NONE, |n| u64::from(n.clus[1])));
        f::<M>(out, 65, at(1).map_or(NONE, |n| u64::from(n.clus[1])));
        f::<M>(out, 66, step(u64::from(p1), u64::from(c[1])));
    }
    glove_features::<M>(ctx, i, p1, out);
    if ctx.ext {
        let e = t.ext;
        if e != 0 {
            for b in 0..9 {
                if e & (1 << b) != 0 {
                    f::<M>(out, 70, b);
                    f::<M>(out, 71, step(b, t.sshape));
                }
            }
        } else {
            f::<M>(out, 70, 99);
        }
        f::<M>(out, 72, at(-1).map_or(NONE, |n| u64::from(n.ext)));
        f::<M>(out, 73, at(1).map_or(NONE, |n| u64::from(n.ext)));
    }
    // document level
    if hist != 0 {
        f::<M>(out, 40, u64::from(hist));
        f::<M>(out, 41, step(u64::from(hist), t.sshape));
        f::<M>(out, 42, step(u64::from(hist), u64::from(p1)));
    }
    if majority != 0 {
        f::<M>(out, 50, u64::from(majority));
        f::<M>(out, 51, step(u64::from(majority), t.sshape));
        f::<M>(out, 52, step(u64::from(majority), u64::from(p1)));
    }
    if t.cap || t.allcaps {
        let seen = u64::from(doc.cap_seen.contains(&t.lower))
            + 2 * u64::from(doc.low_seen.contains(&t.lower));
        f::<M>(out, 43, seen);
        f::<M>(
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
#[inline(always)]
fn glove_features<const M: u8>(ctx: &Ctx<'_>, i: usize, p1: u8, out: &mut Feats) {
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
        f::<M>(out, 80 + l as u64, x);
    }
    f::<M>(out, 84, g(-1, 1));
    f::<M>(out, 85, g(1, 1));
    f::<M>(out, 86, g(-1, 3));
    f::<M>(out, 87, g(1, 3));
    f::<M>(out, 88, step(c[1], t.sshape));
    f::<M>(out, 89, step(u64::from(p1), c[2]));
    let next_cap = ctx.toks.get(i + 1).is_some_and(|n| n.cap);
    f::<M>(
        out,
        97,
        step(c[2], u64::from(p1) * 16 + u64::from(next_cap)),
    );
}

pub(super) fn is_allcaps_sentence(toks: &[Tok]) -> bool {
    let caps = toks.iter().filter(|t| t.allcaps).count();
    let lows = toks
        .iter()
        .filter(|t| !t.cap && !t.allcaps && t.shape != toks[0].shape)
        .count();
    caps >= 2 && caps > lows * 2
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The second pass's mode emits exactly the label-dependent features the split mode sets
    /// apart, in the same order, and the split mode loses none of the full set.
    #[test]
    fn the_dynamic_mode_emits_the_dynamic_part_of_all_features() {
        let words = [
            "MOSCOW",
            "(",
            "Reuters",
            ")",
            "-",
            "Sergey",
            "Lavrov",
            "met",
            "S.",
            "Jaishankar",
            "in",
            "New",
            "Delhi",
            "on",
            "Tuesday",
            ".",
        ];
        let mut toks: Vec<Tok> = words.iter().map(|w| make_tok(w, &mut Vec::new())).collect();
        for (k, t) in toks.iter_mut().enumerate() {
            t.gaz = (k as u16 * 37) & 0x0fff;
            t.clus = [k as u16, k as u16 / 2, 0];
            t.glove = [k as u16 % 3, 0, (k as u16 * 5) % 4, 1];
            t.ext = k as u16 % 5;
        }
        let mut runs = Vec::new();
        initial_runs(&toks, &mut runs);
        let mut doc = DocState::default();
        doc.scan(std::slice::from_ref(&toks));
        for clusters in [false, true] {
            let ctx = Ctx {
                toks: &toks,
                allcaps_sentence: false,
                clusters,
                ext: true,
                initial_runs: &runs,
            };
            for i in 0..toks.len() {
                for (p1, p2, hist, majority) in [(0, 0, 0, 0), (3, 7, 2, 0), (16, 1, 4, 3)] {
                    let mut all = Feats::new();
                    let state = TokenState {
                        i,
                        p1,
                        p2,
                        hist,
                        majority,
                        doc: &doc,
                    };
                    features::<ALL>(&ctx, &state, &mut all);
                    let mut split = Feats::new();
                    features::<SPLIT>(&ctx, &state, &mut split);
                    let mut dynamic = Feats::new();
                    features::<DYNAMIC>(&ctx, &state, &mut dynamic);
                    assert_eq!(dynamic.v, split.dynamic, "token {i}");
                    let mut both = split.v.clone();
                    both.extend(&split.dynamic);
                    let (mut a, mut b) = (all.v.clone(), both);
                    a.sort_unstable();
                    b.sort_unstable();
                    assert_eq!(a, b, "token {i}");
                }
            }
        }
    }

    #[test]
    fn initial_runs_point_at_the_start_of_the_run_before_each_token() {
        let toks: Vec<Tok> = ["Minister", "S.", "W", "Jaishankar", "and", "S", "S"]
            .iter()
            .map(|w| make_tok(w, &mut Vec::new()))
            .collect();
        let mut runs = Vec::new();
        initial_runs(&toks, &mut runs);
        assert_eq!(runs, [0, 1, 1, 1, 4, 5, 5]);
        // The walk it replaces, for every token.
        for (i, &j) in runs.iter().enumerate() {
            let mut k = i;
            while k > 0 && toks[k - 1].initial {
                k -= 1;
            }
            assert_eq!(j, k);
        }
    }
}
