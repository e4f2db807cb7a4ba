//! The `ner.bin` model format: magic and version, weight table, gazetteer, word clusters and
//! external-list entries, all little-endian.

use super::NerModel;
use super::labels::N_CLASSES;
use super::lexicons::{ExtGazetteer, Gazetteer};
use super::word_clusters::{Clusters, GloveClusters};
use crate::enrich::hash::IdMap;

/// Format 6: BILOU classes and GloVe cluster features (older formats are not readable).
const MAGIC: &[u8; 8] = b"NFNER\x00\x00\x06";

/// Errors reading a model file.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("not a newsflow NER model (bad magic or version)")]
    BadMagic,
    #[error("model file is truncated or corrupt")]
    Truncated,
}

impl NerModel {
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
