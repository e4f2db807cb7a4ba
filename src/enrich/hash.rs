//! Hashing shared by enrichment (NER features, lexicons and weight lookups, sentiment word
//! keys, entity clustering): one multiplicative step, a finalizer, and an identity hasher
//! for maps keyed by those 64-bit hashes.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

pub(crate) const K: u64 = 0x517c_c1b7_2722_0a95;

#[inline]
pub(crate) fn step(h: u64, x: u64) -> u64 {
    (h.rotate_left(5) ^ x).wrapping_mul(K)
}

#[inline]
pub(crate) fn fmix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The top `bits` bits of [`fmix`]`(h)` (`1 <= bits <= 63`). With `bits <= 33` the final
/// xor-shift cannot reach them (`(x ^ x >> 33) >> s == x >> s` when `33 + s >= 64`), so it
/// is skipped: a weight-row index costs three instructions less.
#[inline]
pub(crate) fn fmix_top(mut h: u64, bits: u32) -> u64 {
    let shift = 64 - bits;
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    if shift >= 31 {
        h >> shift
    } else {
        (h ^ (h >> 33)) >> shift
    }
}

pub(crate) fn hash_chars(chars: &[char]) -> u64 {
    chars.iter().fold(SEED, |h, &c| step(h, c as u64))
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
pub type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// Seed of every fold over [`step`].
pub(crate) const SEED: u64 = 0xcbf2_9ce4_8422_2325;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fmix_top_is_the_top_bits_of_fmix() {
        let mut h = SEED;
        for i in 0..10_000u64 {
            h = step(h, i);
            for bits in [1, 8, 19, 24, 31, 32, 33, 34, 40, 63] {
                assert_eq!(fmix_top(h, bits), fmix(h) >> (64 - bits), "bits {bits}");
            }
        }
    }
}
