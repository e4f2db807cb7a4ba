//! Mapping answers to newsflow's types: remote labels through the label map, chunk offsets
//! to character offsets into the cleaned field, mentions to clustered entities, and labels
//! with scores to a document sentiment.

use std::collections::BTreeMap;

use super::chunk::Chunk;
use super::wire::{RemoteEntity, RemoteLabel};
use crate::enrich::cluster::{RawMention, cluster};
use crate::enrich::{Entity, EntityType, Field, Mention, SentimentLabel, Source};

/// What a remote label maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mapped {
    Entity(EntityType),
    Sentiment(SentimentLabel),
}

/// The configured label map, parsed once.
#[derive(Debug, Clone, Default)]
pub struct LabelMap {
    exact: BTreeMap<String, Mapped>,
}

impl LabelMap {
    /// Values other than `PER`, `ORG`, `LOC`, `MISC`, `positive`, `negative`, `neutral` are
    /// dropped (start-up checks already refuse them).
    pub fn new(map: &BTreeMap<String, String>) -> Self {
        let exact = map
            .iter()
            .filter_map(|(k, v)| {
                let m = match v.as_str() {
                    "PER" => Mapped::Entity(EntityType::Per),
                    "ORG" => Mapped::Entity(EntityType::Org),
                    "LOC" => Mapped::Entity(EntityType::Loc),
                    "MISC" => Mapped::Entity(EntityType::Misc),
                    "positive" => Mapped::Sentiment(SentimentLabel::Positive),
                    "negative" => Mapped::Sentiment(SentimentLabel::Negative),
                    "neutral" => Mapped::Sentiment(SentimentLabel::Neutral),
                    _ => return None,
                };
                Some((k.clone(), m))
            })
            .collect();
        LabelMap { exact }
    }

    /// The label as given, else ignoring ASCII case, else without a `B-`/`I-`/`E-`/`S-`
    /// tag prefix (servers without aggregation).
    pub fn get(&self, label: &str) -> Option<Mapped> {
        let find = |l: &str| {
            self.exact.get(l).copied().or_else(|| {
                self.exact
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(l))
                    .map(|(_, m)| *m)
            })
        };
        find(label).or_else(|| {
            let (prefix, rest) = label.split_at_checked(2)?;
            matches!(prefix, "B-" | "I-" | "E-" | "S-" | "L-" | "U-")
                .then(|| find(rest))
                .flatten()
        })
    }

    fn entity(&self, label: &str) -> Option<EntityType> {
        match self.get(label)? {
            Mapped::Entity(t) => Some(t),
            Mapped::Sentiment(_) => None,
        }
    }

    fn sentiment(&self, label: &str) -> Option<SentimentLabel> {
        match self.get(label)? {
            Mapped::Sentiment(s) => Some(s),
            Mapped::Entity(_) => None,
        }
    }
}

/// The span `[start, end)` in chars of `text` that a remote entity points at, trimmed of
/// surrounding whitespace. Offsets are taken as code points (Python string indices); when
/// they do not match `word` but byte offsets do, bytes are assumed. Without offsets, the
/// first occurrence of `word` at or after `from` is used.
pub fn locate(text: &str, e: &RemoteEntity, from: usize) -> Option<(usize, usize)> {
    let chars: Vec<char> = text.chars().collect();
    let span = match (e.start, e.end) {
        (Some(s), Some(t)) if s < t && t <= chars.len() => {
            let as_chars: String = chars[s..t].iter().collect();
            match (&e.word, text.get(s..t)) {
                (Some(w), Some(as_bytes)) if !same_word(&as_chars, w) && same_word(as_bytes, w) => {
                    let s = text[..s].chars().count();
                    (s, s + as_bytes.chars().count())
                }
                _ => (s, t),
            }
        }
        (Some(s), Some(t)) if s < t => {
            // Past the end in chars: only byte offsets can be right.
            let piece = text.get(s..t)?;
            let s = text[..s].chars().count();
            (s, s + piece.chars().count())
        }
        (None, None) | (None, Some(_)) | (Some(_), None) => {
            let w = e.word.as_deref()?.trim();
            if w.is_empty() {
                return None;
            }
            let from_byte = text.char_indices().nth(from).map_or(text.len(), |c| c.0);
            let at = text[from_byte..].find(w)? + from_byte;
            let s = text[..at].chars().count();
            (s, s + w.chars().count())
        }
        _ => return None,
    };
    let (mut s, mut t) = span;
    while s < t && chars[s].is_whitespace() {
        s += 1;
    }
    while t > s && chars[t - 1].is_whitespace() {
        t -= 1;
    }
    (s < t).then_some((s, t))
}

/// Does a span's text match the server's `word` (which may be lower-cased, or carry
/// WordPiece `##` or SentencePiece spacing)?
fn same_word(span: &str, word: &str) -> bool {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    norm(span) == norm(word)
}

/// Entities from the answers to `chunks` (answers[i] belongs to chunks[i]), with
/// `source: remote`, clustered as the local engine clusters its own.
///
/// The answers are untrusted: an input yields at most one mention per two of its characters
/// (more cannot be distinct words), the rest are ignored, so however many items a server
/// sends, the mentions handed to clustering stay proportional to the text sent.
pub fn entities(
    chunks: &[Chunk],
    answers: &[Vec<RemoteEntity>],
    labels: &LabelMap,
    body_chars: usize,
) -> Vec<Entity> {
    let mut mentions = Vec::new();
    for (chunk, answer) in chunks.iter().zip(answers) {
        let mut from = 0;
        let mut room = chunk.text.chars().count() / 2 + 1;
        for e in answer {
            if room == 0 {
                break;
            }
            let Some(kind) = labels.entity(&e.entity_group) else {
                continue;
            };
            let Some((s, t)) = locate(&chunk.text, e, from) else {
                continue;
            };
            from = t;
            room -= 1;
            let text: String = chunk.text.chars().skip(s).take(t - s).collect();
            let (start, end) = (chunk.start + s, chunk.start + t);
            let position = match chunk.field {
                Field::Title => 0.0,
                Field::Body => start as f32 / body_chars.max(1) as f32,
            };
            mentions.push(RawMention {
                mention: Mention {
                    field: chunk.field,
                    start,
                    end,
                    text,
                },
                kind,
                sentence: 0,
                position,
                normalized: None,
            });
        }
    }
    // No sentence scores: a remote entity carries no sentiment of its own.
    let mut entities = cluster(mentions, &[]);
    for e in &mut entities {
        e.source = Source::Remote;
    }
    entities
}

/// One input's sentiment in [-1, 1]: the score mass on positive labels minus that on
/// negative ones (a top-1 `NEGATIVE 0.8` gives -0.8; all scores give P(pos) - P(neg)).
fn signed(answer: &[RemoteLabel], labels: &LabelMap) -> f32 {
    answer
        .iter()
        .map(|l| match labels.sentiment(&l.label) {
            Some(SentimentLabel::Positive) => l.score,
            Some(SentimentLabel::Negative) => -l.score,
            _ => 0.0,
        })
        .sum::<f32>()
        .clamp(-1.0, 1.0)
}

/// The document's label and signed score from the answers to `chunks`: the title counts
/// twice as much as the body, whose chunks count by their length. The label is the one
/// with the most weighted score mass. `None` when no answer carried a mapped label.
pub fn sentiment(
    chunks: &[Chunk],
    answers: &[Vec<RemoteLabel>],
    labels: &LabelMap,
) -> Option<(SentimentLabel, f32)> {
    let body_chars: usize = chunks
        .iter()
        .filter(|c| c.field == Field::Body)
        .map(|c| c.text.chars().count())
        .sum();
    let mut mass = [0f32; 3];
    let (mut sum, mut weight) = (0f32, 0f32);
    let mut any = false;
    for (chunk, answer) in chunks.iter().zip(answers) {
        let share = match chunk.field {
            Field::Title => 1.0,
            Field::Body => chunk.text.chars().count() as f32 / body_chars.max(1) as f32,
        };
        let w = match chunk.field {
            Field::Title => 2.0 * share,
            Field::Body => share,
        };
        for l in answer {
            let slot = match labels.sentiment(&l.label) {
                Some(SentimentLabel::Positive) => 0,
                Some(SentimentLabel::Negative) => 1,
                Some(SentimentLabel::Neutral) => 2,
                None => continue,
            };
            any = true;
            mass[slot] += w * l.score.clamp(0.0, 1.0);
        }
        sum += w * signed(answer, labels);
        weight += w;
    }
    if !any || weight == 0.0 {
        return None;
    }
    let score = (sum / weight).clamp(-1.0, 1.0);
    let best = (0..3)
        .max_by(|&a, &b| mass[a].total_cmp(&mass[b]).then(b.cmp(&a)))
        .unwrap_or(2);
    let label = [
        SentimentLabel::Positive,
        SentimentLabel::Negative,
        SentimentLabel::Neutral,
    ][best];
    Some((label, if score.is_finite() { score } else { 0.0 }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_map() -> LabelMap {
        let pairs = [
            ("PER", "PER"),
            ("ORG", "ORG"),
            ("LOC", "LOC"),
            ("MISC", "MISC"),
            ("POSITIVE", "positive"),
            ("NEGATIVE", "negative"),
            ("neutral", "neutral"),
        ];
        LabelMap::new(
            &pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn ent(group: &str, word: &str, start: usize, end: usize) -> RemoteEntity {
        RemoteEntity {
            entity_group: group.into(),
            word: Some(word.into()),
            start: Some(start),
            end: Some(end),
            score: Some(0.9),
        }
    }

    #[test]
    fn labels_map_exactly_then_case_insensitively_then_without_tag_prefix() {
        let m = default_map();
        assert_eq!(m.get("PER"), Some(Mapped::Entity(EntityType::Per)));
        assert_eq!(m.get("per"), Some(Mapped::Entity(EntityType::Per)));
        assert_eq!(m.get("B-LOC"), Some(Mapped::Entity(EntityType::Loc)));
        assert_eq!(m.get("I-ORG"), Some(Mapped::Entity(EntityType::Org)));
        assert_eq!(
            m.get("Positive"),
            Some(Mapped::Sentiment(SentimentLabel::Positive))
        );
        assert_eq!(m.get("LABEL_0"), None);
        assert_eq!(m.get("O"), None);
        let custom = LabelMap::new(&BTreeMap::from([
            ("PERSON".to_string(), "PER".to_string()),
            ("LABEL_2".to_string(), "positive".to_string()),
        ]));
        assert_eq!(custom.get("PERSON"), Some(Mapped::Entity(EntityType::Per)));
        assert_eq!(custom.get("PER"), None);
    }

    #[test]
    fn code_point_offsets_are_chars_and_are_trimmed() {
        let text = "Émilie met Zoë in Zürich";
        // Python: text.index("Zürich") == 18 (code points), bytes would be 21.
        assert_eq!(
            locate(text, &ent("LOC", "Zürich", 18, 24), 0),
            Some((18, 24))
        );
        // BPE servers often include the leading space.
        assert_eq!(locate(text, &ent("PER", " Zoë", 10, 14), 0), Some((11, 14)));
        assert_eq!(locate(text, &ent("LOC", "x", 20, 99), 0), None);
        assert_eq!(locate(text, &ent("LOC", "x", 5, 5), 0), None);
    }

    #[test]
    fn byte_offsets_are_recognised_by_the_word() {
        let text = "Émilie met Zoë in Zürich";
        let bytes_start = text.find("Zürich").unwrap();
        let e = ent("LOC", "Zürich", bytes_start, bytes_start + "Zürich".len());
        assert_eq!(locate(text, &e, 0), Some((18, 24)));
    }

    #[test]
    fn missing_offsets_are_found_from_the_word_in_reading_order() {
        let text = "Oslo and Oslo again";
        let e = RemoteEntity {
            entity_group: "LOC".into(),
            word: Some("Oslo".into()),
            start: None,
            end: None,
            score: None,
        };
        assert_eq!(locate(text, &e, 0), Some((0, 4)));
        assert_eq!(locate(text, &e, 4), Some((9, 13)));
    }

    #[test]
    fn entities_carry_field_offsets_across_chunks_and_cluster() {
        let body = "Anna Berg spoke. Later, in Zürich, Anna Berg left.";
        let second = body.chars().position(|c| c == 'L').unwrap();
        let second_text: String = body.chars().skip(second).collect();
        let chunks = vec![
            Chunk {
                field: Field::Title,
                start: 0,
                text: "Berg in Zürich".into(),
            },
            Chunk {
                field: Field::Body,
                start: 0,
                text: "Anna Berg spoke.".into(),
            },
            Chunk {
                field: Field::Body,
                start: second,
                text: second_text,
            },
        ];
        let answers = vec![
            vec![ent("PER", "Berg", 0, 4), ent("LOC", "Zürich", 8, 14)],
            vec![ent("PER", "Anna Berg", 0, 9), ent("O", "spoke", 10, 15)],
            vec![
                ent("LOC", "Zürich", 10, 16),
                ent("PER", "Anna Berg", 18, 27),
            ],
        ];
        let es = entities(&chunks, &answers, &default_map(), body.chars().count());
        assert_eq!(es.len(), 2);
        let berg = es.iter().find(|e| e.kind == EntityType::Per).unwrap();
        assert_eq!(berg.text, "Anna Berg");
        assert_eq!(berg.source, Source::Remote);
        assert_eq!(berg.mentions.len(), 3);
        for m in es.iter().flat_map(|e| &e.mentions) {
            let field = if m.field == Field::Title {
                "Berg in Zürich"
            } else {
                body
            };
            let got: String = field.chars().skip(m.start).take(m.end - m.start).collect();
            assert_eq!(got, m.text);
        }
        assert!(berg.salience > 0.0 && berg.salience <= 1.0);
        assert_eq!(berg.sentiment, None);
    }

    #[test]
    fn sentiment_is_signed_weighted_and_labelled_by_mass() {
        let m = default_map();
        let chunks = vec![
            Chunk {
                field: Field::Title,
                start: 0,
                text: "t".into(),
            },
            Chunk {
                field: Field::Body,
                start: 0,
                text: "body".into(),
            },
        ];
        let l = |label: &str, score: f32| RemoteLabel {
            label: label.into(),
            score,
        };
        let answers = vec![vec![l("NEGATIVE", 0.9)], vec![l("POSITIVE", 0.6)]];
        let (label, score) = sentiment(&chunks, &answers, &m).unwrap();
        assert_eq!(label, SentimentLabel::Negative);
        assert!((score - (2.0 * -0.9 + 0.6) / 3.0).abs() < 1e-6, "{score}");
        let all = vec![
            vec![l("neutral", 0.8), l("positive", 0.15), l("negative", 0.05)],
            vec![l("neutral", 0.8), l("positive", 0.15), l("negative", 0.05)],
        ];
        let (label, score) = sentiment(&chunks, &all, &m).unwrap();
        assert_eq!(label, SentimentLabel::Neutral);
        assert!((score - 0.1).abs() < 1e-6);
        assert_eq!(
            sentiment(&chunks, &[vec![l("LABEL_9", 1.0)], vec![]], &m),
            None
        );
    }

    #[test]
    fn a_flood_of_answer_items_yields_mentions_in_proportion_to_the_text() {
        let chunks = vec![Chunk {
            field: Field::Body,
            start: 0,
            text: "Oslo and Oslo again".into(),
        }];
        let item = RemoteEntity {
            entity_group: "LOC".into(),
            word: Some("Oslo".into()),
            start: Some(0),
            end: Some(4),
            score: Some(0.9),
        };
        let answers = vec![vec![item; 100_000]];
        let got = entities(&chunks, &answers, &default_map(), 19);
        let mentions: usize = got.iter().map(|e| e.mentions.len()).sum();
        assert!((1..=10).contains(&mentions), "{mentions}");
    }
}
