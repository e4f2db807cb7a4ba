//! Per-article clustering of mentions into entities ("Sergey Lavrov" and "Lavrov";
//! "Dr S Jaishankar", "S Jaishankar" and "Jaishankar"), with a canonical text, a salience
//! score and the sentiment of the sentences that mention each entity.
//!
//! Clustering is near-linear: a mention looks up the clusters it could join through hashed
//! indexes (same name, a part of a longer name, an acronym; numbers by their normalized
//! value) instead of testing every cluster. The caller bounds the mention count, which bounds
//! the one remaining worst case (many clusters sharing one part).

use std::collections::HashMap;

use super::hash::{IdMap, SEED, step};

use super::{Entity, EntityType, Field, Mention, Source};

/// A mention before clustering.
#[derive(Debug, Clone)]
pub struct RawMention {
    pub mention: Mention,
    pub kind: EntityType,
    /// Index of the sentence (into the article's sentence list) holding the mention.
    pub sentence: usize,
    /// Position in the article in [0, 1] (title mentions are 0).
    pub position: f32,
    pub normalized: Option<String>,
}

const HONORIFICS: &[&str] = &[
    "mr",
    "mrs",
    "ms",
    "miss",
    "dr",
    "prof",
    "professor",
    "sir",
    "dame",
    "lord",
    "lady",
    "president",
    "minister",
    "premier",
    "chancellor",
    "king",
    "queen",
    "prince",
    "princess",
    "gen",
    "general",
    "sen",
    "senator",
    "rep",
    "gov",
    "governor",
    "judge",
    "justice",
    "pope",
    "sheikh",
    "shri",
    "smt",
    "mayor",
    "col",
    "capt",
    "lt",
    "sgt",
    "adm",
    "rev",
    "st",
    "saint",
    "the",
];

/// A mention joins a longer name as one of its parts only when it has at most this many
/// words (real short forms have one to three; longer mentions join their exact name only).
/// It bounds the parts indexed per cluster.
const MAX_PART_WORDS: usize = 8;

/// The name's words without titles and possessives, in original case.
fn name_words(text: &str) -> Vec<&str> {
    let mut words: Vec<&str> = text.split_whitespace().collect();
    if let Some(last) = words.last_mut() {
        for suffix in ["'s", "’s", "'", "’"] {
            if let Some(s) = last.strip_suffix(suffix)
                && !s.is_empty()
            {
                *last = s;
                break;
            }
        }
    }
    let titles = words
        .iter()
        .take(words.len().saturating_sub(1))
        .take_while(|w| {
            let w = w.trim_end_matches('.').to_lowercase();
            HONORIFICS.contains(&w.as_str())
        })
        .count();
    words.drain(..titles);
    words
}

/// Maps keyed by [`seq_hash`] values (already hashes: no second hashing).
type SeqMap<V> = IdMap<V>;

/// The enrichment hash over the words' bytes, each word closed by a separator byte that no
/// word has. Collisions only add candidates, which are checked word by word.
fn seq_hash(words: &[String]) -> u64 {
    let mut h = SEED;
    for w in words {
        for b in w.bytes().chain([0xff]) {
            h = step(h, u64::from(b));
        }
    }
    h
}

/// First letters of a name's words, skipping function words ("SCO" for "Shanghai Cooperation
/// Organisation").
fn initials(long: &[String]) -> String {
    long.iter()
        .filter(|w| !matches!(w.as_str(), "of" | "the" | "and" | "for" | "&"))
        .filter_map(|w| w.chars().next())
        .collect()
}

fn key_of(words: &[&str]) -> Vec<String> {
    words
        .iter()
        .map(|w| w.trim_end_matches('.').to_lowercase())
        .collect()
}

fn is_sub(short: &[String], long: &[String]) -> bool {
    !short.is_empty() && short.len() < long.len() && long.windows(short.len()).any(|w| w == short)
}

fn is_acronym(short: &[String], long: &[String]) -> bool {
    if short.len() != 1 || long.len() < 2 {
        return false;
    }
    let initials = initials(long);
    initials.chars().count() >= 2 && initials == short[0]
}

/// Where to find the clusters a mention could join.
#[derive(Default)]
struct Index {
    /// (type, normalized value) → the DATE, MONEY or PERCENT cluster.
    numeric: HashMap<(EntityType, String), usize>,
    /// Hash of a name cluster's key → clusters with that key.
    exact: SeqMap<Vec<usize>>,
    /// Hash of a contiguous part (shorter than the key, at most [`MAX_PART_WORDS`]) → clusters.
    parts: SeqMap<Vec<usize>>,
    /// Initials of a key of two words or more → clusters.
    acronyms: HashMap<String, Vec<usize>>,
}

impl Index {
    fn add_name(&mut self, ci: usize, key: &[String]) {
        fn push(list: &mut Vec<usize>, ci: usize) {
            if list.last() != Some(&ci) {
                list.push(ci);
            }
        }
        push(self.exact.entry(seq_hash(key)).or_default(), ci);
        let n = key.len();
        for start in 0..n {
            for len in 1..=MAX_PART_WORDS.min(n - start) {
                if len < n {
                    push(
                        self.parts
                            .entry(seq_hash(&key[start..start + len]))
                            .or_default(),
                        ci,
                    );
                }
            }
        }
        if n >= 2 {
            push(self.acronyms.entry(initials(key)).or_default(), ci);
        }
    }

    /// Clusters that may be compatible with a name mention (a superset: each is checked).
    fn candidates<'a>(&'a self, key: &[String]) -> impl Iterator<Item = usize> + 'a {
        let h = seq_hash(key);
        let exact = self.exact.get(&h);
        let parts = (key.len() <= MAX_PART_WORDS)
            .then(|| self.parts.get(&h))
            .flatten();
        let acronyms = (key.len() == 1)
            .then(|| self.acronyms.get(&key[0]))
            .flatten();
        [exact, parts, acronyms]
            .into_iter()
            .flatten()
            .flat_map(|l| l.iter().copied())
    }
}

struct Cluster {
    key: Vec<String>,
    canonical: String,
    votes: Votes,
    members: Vec<usize>,
}

/// Cluster mentions into entities. `sentence_scores[i]` is the sentiment of sentence `i` in
/// [-1, 1]. Entities come out most salient first.
pub fn cluster(mentions: Vec<RawMention>, sentence_scores: &[f32]) -> Vec<Entity> {
    let keyed: Vec<(Vec<String>, String)> = mentions
        .iter()
        .map(|m| {
            let words = name_words(&m.mention.text);
            (key_of(&words), words.join(" "))
        })
        .collect();
    // Longest names first, then in reading order, so short forms find their full form.
    let mut order: Vec<usize> = (0..mentions.len()).collect();
    order.sort_by(|&a, &b| {
        keyed[b]
            .0
            .len()
            .cmp(&keyed[a].0.len())
            .then(mentions[a].position.total_cmp(&mentions[b].position))
    });
    let mut clusters: Vec<Cluster> = Vec::new();
    let mut index = Index::default();
    for &i in &order {
        let m = &mentions[i];
        let (key, canonical) = &keyed[i];
        let numeric = matches!(
            m.kind,
            EntityType::Date | EntityType::Money | EntityType::Percent
        );
        let numeric_key = numeric.then(|| m.normalized.clone().unwrap_or_else(|| key.join(" ")));
        let found = if let Some(nk) = &numeric_key {
            index.numeric.get(&(m.kind, nk.clone())).copied()
        } else {
            let compatible = |c: &Cluster| {
                let ckind = c.votes.top();
                if matches!(
                    ckind,
                    EntityType::Date | EntityType::Money | EntityType::Percent
                ) {
                    return false;
                }
                if c.key == *key {
                    return true;
                }
                if !(is_sub(key, &c.key) || (ckind == EntityType::Org && is_acronym(key, &c.key))) {
                    return false;
                }
                // A person's short form is their surname (or surname run); other kinds need
                // the same type.
                if ckind == EntityType::Per {
                    c.key.ends_with(key) || (m.kind == EntityType::Per && c.key.starts_with(key))
                } else {
                    ckind == m.kind
                }
            };
            // Prefer the biggest compatible cluster (the latest of equals).
            index
                .candidates(key)
                .filter(|&ci| compatible(&clusters[ci]))
                .max_by_key(|&ci| (clusters[ci].members.len(), ci))
        };
        match found {
            Some(ci) => {
                let c = &mut clusters[ci];
                c.votes.add(m.kind, key.len() as f32);
                c.members.push(i);
            }
            None => {
                let ci = clusters.len();
                match &numeric_key {
                    Some(nk) => {
                        index.numeric.insert((m.kind, nk.clone()), ci);
                    }
                    None => index.add_name(ci, key),
                }
                clusters.push(Cluster {
                    key: match numeric_key {
                        Some(nk) => vec![nk],
                        None => key.clone(),
                    },
                    canonical: if numeric {
                        m.mention.text.clone()
                    } else {
                        canonical.clone()
                    },
                    votes: Votes::new(m.kind, key.len().max(1) as f32),
                    members: vec![i],
                })
            }
        }
    }
    let max_count = clusters.iter().map(|c| c.members.len()).max().unwrap_or(1) as f32;
    let mut out: Vec<Entity> = clusters
        .into_iter()
        .map(|c| {
            let mut members = c.members;
            members.sort_by(|&a, &b| {
                let (ma, mb) = (&mentions[a].mention, &mentions[b].mention);
                (ma.field == Field::Body, ma.start).cmp(&(mb.field == Field::Body, mb.start))
            });
            let in_title = members
                .iter()
                .any(|&i| mentions[i].mention.field == Field::Title);
            let first = members
                .iter()
                .map(|&i| mentions[i].position)
                .fold(1.0f32, f32::min);
            let count = members.len() as f32;
            let salience = (0.35 * f32::from(u8::from(in_title))
                + 0.3 * (1.0 - first.clamp(0.0, 1.0))
                + 0.35 * (count / max_count))
                .clamp(0.0, 1.0);
            let mut sents: Vec<usize> = members.iter().map(|&i| mentions[i].sentence).collect();
            sents.sort_unstable();
            sents.dedup();
            let scores: Vec<f32> = sents
                .iter()
                .filter_map(|&s| sentence_scores.get(s).copied())
                .collect();
            let sentiment =
                (!scores.is_empty()).then(|| scores.iter().sum::<f32>() / scores.len() as f32);
            let kind = c.votes.top();
            let normalized = members.iter().find_map(|&i| mentions[i].normalized.clone());
            Entity {
                text: c.canonical,
                kind,
                mentions: members
                    .iter()
                    .map(|&i| mentions[i].mention.clone())
                    .collect(),
                salience,
                sentiment,
                normalized,
                source: Source::Local,
            }
        })
        .collect();
    out.sort_by(|a, b| b.salience.total_cmp(&a.salience).then(a.text.cmp(&b.text)));
    out
}

/// A cluster's type votes: per type that has any, the summed key lengths of its mentions.
struct Votes([Option<f32>; EntityType::ALL.len()]);

impl Votes {
    fn new(kind: EntityType, votes: f32) -> Votes {
        let mut v = Votes([None; EntityType::ALL.len()]);
        v.add(kind, votes);
        v
    }

    fn add(&mut self, kind: EntityType, votes: f32) {
        *self.0[kind as usize].get_or_insert(0.0) += votes;
    }

    /// The most voted type; of equals, the first in [`EntityType::ALL`].
    fn top(&self) -> EntityType {
        let mut best: Option<(f32, EntityType)> = None;
        for kind in EntityType::ALL {
            if let Some(v) = self.0[kind as usize]
                && best.is_none_or(|(b, _)| v.total_cmp(&b).is_gt())
            {
                best = Some((v, kind));
            }
        }
        best.map_or(EntityType::Misc, |(_, kind)| kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn votes_pick_the_most_voted_type_and_the_first_of_equals() {
        for (i, kind) in EntityType::ALL.iter().enumerate() {
            assert_eq!(*kind as usize, i, "ALL is in declaration order");
        }
        let mut v = Votes::new(EntityType::Loc, 2.0);
        assert_eq!(v.top(), EntityType::Loc);
        v.add(EntityType::Org, 2.0);
        assert_eq!(v.top(), EntityType::Org, "ties go to the earlier type");
        v.add(EntityType::Loc, 0.5);
        assert_eq!(v.top(), EntityType::Loc);
        let empty = Votes::new(EntityType::Money, 0.0);
        assert_eq!(
            empty.top(),
            EntityType::Money,
            "a type voted 0 is still a candidate"
        );
    }

    fn m(text: &str, kind: EntityType, field: Field, pos: f32, sentence: usize) -> RawMention {
        RawMention {
            mention: Mention {
                field,
                start: 0,
                end: text.chars().count(),
                text: text.into(),
            },
            kind,
            sentence,
            position: pos,
            normalized: None,
        }
    }

    #[test]
    fn surnames_and_titled_forms_join_the_full_name() {
        use EntityType::*;
        let ents = cluster(
            vec![
                m("Jaishankar", Per, Field::Title, 0.0, 0),
                m("Lavrov", Per, Field::Title, 0.0, 0),
                m("S Jaishankar", Per, Field::Body, 0.1, 1),
                m("Sergey Lavrov", Per, Field::Body, 0.1, 1),
                m("Dr S Jaishankar", Per, Field::Body, 0.2, 2),
                m("Lavrov", Org, Field::Body, 0.3, 3),
                m("Rajnath Singh", Per, Field::Body, 0.5, 4),
                m("Singh", Per, Field::Body, 0.6, 5),
                m("Russian Foreign Ministry", Org, Field::Body, 0.1, 1),
                m("Russia", Loc, Field::Body, 0.5, 4),
                m(
                    "Shanghai Cooperation Organisation",
                    Org,
                    Field::Body,
                    0.9,
                    6,
                ),
                m("SCO", Org, Field::Body, 0.95, 7),
                m("Moscow’s", Loc, Field::Body, 0.2, 2),
                m("Moscow", Loc, Field::Title, 0.0, 0),
            ],
            &[0.0, -0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0],
        );
        let get = |t: &str| {
            ents.iter()
                .find(|e| e.text == t)
                .unwrap_or_else(|| panic!("no {t}: {ents:#?}"))
        };
        assert_eq!(get("S Jaishankar").mentions.len(), 3);
        assert_eq!(get("S Jaishankar").kind, Per);
        assert_eq!(get("Sergey Lavrov").mentions.len(), 3);
        assert_eq!(get("Sergey Lavrov").kind, Per);
        assert_eq!(get("Rajnath Singh").mentions.len(), 2);
        assert_eq!(get("Shanghai Cooperation Organisation").mentions.len(), 2);
        assert_eq!(get("Moscow").mentions.len(), 2);
        assert_eq!(get("Russia").mentions.len(), 1);
        assert_eq!(get("Russian Foreign Ministry").mentions.len(), 1);
        // Title presence and frequency make the talks' principals most salient.
        assert!(get("Sergey Lavrov").salience > get("Russia").salience);
        // Entity sentiment is the mean over the sentences that mention it: (0 - 0.5 + 0.5) / 3.
        assert_eq!(get("S Jaishankar").sentiment, Some(0.0));
        assert_eq!(get("Rajnath Singh").sentiment, Some(0.0));
        assert!(ents.iter().all(|e| (0.0..=1.0).contains(&e.salience)));
    }

    #[test]
    fn many_mentions_cluster_by_value_and_by_name_through_the_indexes() {
        use EntityType::*;
        // 20,000 distinct percentages (once a scan of every cluster per mention), each twice.
        let mut ms = Vec::new();
        for round in 0..2 {
            for i in 0..20_000 {
                let mut x = m(
                    &format!("{i} %"),
                    Percent,
                    Field::Body,
                    round as f32 / 2.0,
                    0,
                );
                x.normalized = Some(format!("{i}%"));
                ms.push(x);
            }
        }
        // Many people sharing a surname, and that surname alone.
        for i in 0..2_000 {
            ms.push(m(&format!("Name{i} Singh"), Per, Field::Body, 0.5, 1));
        }
        ms.push(m("Singh", Per, Field::Body, 0.9, 2));
        ms.push(m("Mr Mr Mr Mr Singh", Per, Field::Body, 0.9, 2));
        let ents = cluster(ms, &[0.0, 0.0, 0.0]);
        assert_eq!(ents.len(), 20_000 + 2_000);
        assert!(
            ents.iter()
                .filter(|e| e.kind == Percent)
                .all(|e| e.mentions.len() == 2)
        );
        let joined: usize = ents
            .iter()
            .filter(|e| e.kind == Per)
            .map(|e| e.mentions.len())
            .sum();
        assert_eq!(joined, 2_002);
    }

    #[test]
    fn titles_are_stripped_but_a_name_keeps_its_last_word() {
        assert_eq!(name_words("Mr Mr Dr Singh"), ["Singh"]);
        assert_eq!(name_words("President"), ["President"]);
        assert_eq!(name_words("Dr. S Jaishankar's"), ["S", "Jaishankar"]);
    }

    #[test]
    fn different_people_with_one_surname_stay_apart_when_both_full() {
        use EntityType::*;
        let ents = cluster(
            vec![
                m("Rajnath Singh", Per, Field::Body, 0.1, 0),
                m("Manmohan Singh", Per, Field::Body, 0.2, 1),
            ],
            &[],
        );
        assert_eq!(ents.len(), 2);
        assert!(cluster(vec![], &[]).is_empty());
    }
}
