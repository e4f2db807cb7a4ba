//! The per-article caps: field truncation, long-sentence splitting, the mention cap and the
//! entity output budget.

use super::super::cluster::RawMention;
use super::super::{Entity, Field, Mention};
use super::MAX_TEXT_BYTES;

/// Approximate JSON bytes of a mention and of an entity without its mentions.
pub(super) fn mention_cost(m: &Mention) -> usize {
    m.text.len() + 64
}
pub(super) fn entity_cost(e: &Entity) -> usize {
    e.text.len() + e.normalized.as_ref().map_or(0, String::len) + 128
}

/// Keeps the first (most salient) entities, and the first mentions of each, that fit in
/// `max_entities` and `budget` bytes. Returns whether anything was cut.
pub(super) fn fit_budget(
    entities: &mut Vec<Entity>,
    max_entities: usize,
    mut budget: usize,
) -> bool {
    let mut cut = entities.len() > max_entities;
    entities.truncate(max_entities);
    let mut kept = entities.len();
    for (k, e) in entities.iter_mut().enumerate() {
        let first = e.mentions.first().map_or(0, mention_cost);
        if entity_cost(e) + first > budget {
            kept = k;
            break;
        }
        budget -= entity_cost(e);
        let mut keep = 0;
        for m in &e.mentions {
            let c = mention_cost(m);
            if c > budget {
                break;
            }
            budget -= c;
            keep += 1;
        }
        if keep < e.mentions.len() {
            e.mentions.truncate(keep);
            cut = true;
        }
    }
    if kept < entities.len() {
        entities.truncate(kept);
        cut = true;
    }
    cut
}

/// Keeps the title's mentions, then the body's in reading order, up to `max`; the relative
/// order of those kept is unchanged.
pub(super) fn cap_mentions(mentions: &mut Vec<RawMention>, max: usize) {
    let titles = mentions
        .iter()
        .filter(|m| m.mention.field == Field::Title)
        .count()
        .min(max);
    let (mut title_left, mut body_left) = (titles, max - titles);
    mentions.retain(|m| {
        let left = if m.mention.field == Field::Title {
            &mut title_left
        } else {
            &mut body_left
        };
        let keep = *left > 0;
        *left = left.saturating_sub(1);
        keep
    });
}

/// Splits sentences longer than `max` tokens into pieces of `max`; returns how many were.
pub(super) fn split_long(sentences: &mut Vec<std::ops::Range<usize>>, max: usize) -> usize {
    let long = sentences.iter().filter(|r| r.len() > max).count();
    if long > 0 {
        *sentences = sentences
            .iter()
            .flat_map(|r| {
                r.clone()
                    .step_by(max)
                    .map(move |start| start..(start + max).min(r.end))
            })
            .collect();
    }
    long
}

/// The first [`MAX_TEXT_BYTES`] of `text`, cut at a character boundary.
pub(in crate::enrich) fn truncate(text: &str) -> &str {
    if text.len() <= MAX_TEXT_BYTES {
        return text;
    }
    let mut end = MAX_TEXT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::{EntityType, Source};

    #[test]
    fn the_output_budget_keeps_the_first_entities_and_their_first_mentions() {
        let mention = |i: usize| Mention {
            field: Field::Body,
            start: i,
            end: i + 1,
            text: "x".into(),
        };
        let entity = |n: usize| Entity {
            text: "e".into(),
            kind: EntityType::Misc,
            mentions: (0..n).map(mention).collect(),
            salience: 0.5,
            sentiment: None,
            normalized: None,
            source: Source::Local,
        };
        let (e, m) = (entity_cost(&entity(0)), mention_cost(&mention(0)));
        let mut ents = vec![entity(3), entity(3), entity(3)];
        assert!(!fit_budget(&mut ents, 3, 3 * (e + 3 * m)));
        assert_eq!(ents.len(), 3);
        // Room for the first entity whole and two mentions of the second.
        let mut ents = vec![entity(3), entity(3), entity(3)];
        assert!(fit_budget(&mut ents, 3, 2 * e + 5 * m));
        let kept: Vec<usize> = ents.iter().map(|e| e.mentions.len()).collect();
        assert_eq!(kept, [3, 2]);
        let mut ents = vec![entity(1), entity(1), entity(1)];
        assert!(fit_budget(&mut ents, 2, usize::MAX));
        assert_eq!(ents.len(), 2);
    }

    #[test]
    fn the_mention_cap_keeps_the_title_and_the_earliest_body_mentions_in_order() {
        let raw = |field, start| RawMention {
            mention: Mention {
                field,
                start,
                end: start + 1,
                text: "x".into(),
            },
            kind: EntityType::Misc,
            sentence: 0,
            position: 0.0,
            normalized: None,
        };
        let mut ms: Vec<RawMention> = (0..10).map(|i| raw(Field::Body, i)).collect();
        ms.extend((0..3).map(|i| raw(Field::Title, i)));
        cap_mentions(&mut ms, 5);
        let kept: Vec<(Field, usize)> = ms
            .iter()
            .map(|m| (m.mention.field, m.mention.start))
            .collect();
        assert_eq!(
            kept,
            [
                (Field::Body, 0),
                (Field::Body, 1),
                (Field::Title, 0),
                (Field::Title, 1),
                (Field::Title, 2)
            ]
        );
    }

    #[test]
    fn long_sentences_split_into_pieces_and_others_stay_whole() {
        let mut s = vec![0..3, 3..10, 10..11];
        assert_eq!(split_long(&mut s, 3), 1);
        assert_eq!(s, [0..3, 3..6, 6..9, 9..10, 10..11]);
        let mut s = vec![0..3, 3..4];
        assert_eq!(split_long(&mut s, 3), 0);
        assert_eq!(s, [0..3, 3..4]);
    }
}
