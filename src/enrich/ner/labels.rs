//! Labels: the entity types the tagger predicts, its internal BILOU classes, the IOB2 labels
//! it returns, and the clean-up of a sentence's decoded classes into labels.

use crate::enrich::EntityType;

/// Entity types the tagger predicts, in label order.
pub const TYPES: [EntityType; 4] = [
    EntityType::Per,
    EntityType::Org,
    EntityType::Loc,
    EntityType::Misc,
];
pub(super) const TYPE_NAMES: [&str; 4] = ["PER", "ORG", "LOC", "MISC"];
/// IOB2 output labels: O, B-PER, B-ORG, B-LOC, B-MISC, I-PER, I-ORG, I-LOC, I-MISC.
pub const N_LABELS: usize = 9;

/// Label index → IOB2 tag string.
pub fn label_tag(l: u8) -> &'static str {
    const TAGS: [&str; N_LABELS] = [
        "O", "B-PER", "B-ORG", "B-LOC", "B-MISC", "I-PER", "I-ORG", "I-LOC", "I-MISC",
    ];
    TAGS.get(l as usize).copied().unwrap_or("O")
}

/// Internal BILOU classes the perceptron scores: O, then B-, I-, L- (last) and U- (unit) of
/// PER, ORG, LOC, MISC; [`NerModel::tag_document`] converts them to IOB2 labels.
pub(super) const N_CLASSES: usize = 17;

/// Entity type index (0..4) of a non-O BILOU class.
pub(super) fn class_type(c: u8) -> Option<usize> {
    (1..N_CLASSES as u8)
        .contains(&c)
        .then(|| (c as usize - 1) % 4)
}

/// BILOU classes of one sentence → IOB2 labels. Greedy decoding can produce inconsistent
/// sequences; their fragments are dropped rather than guessed at: a begin (B) not followed by
/// an inside or last of its type, and an inside or last (I, L) with no open entity of its
/// type. (Keeping them as entities scored 92.56 dev F1, dropping them 93.56.)
pub(super) fn to_iob2(classes: &[u8]) -> Vec<u8> {
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
pub(super) fn drop_lowercase_spans(words: &[&str], labels: &mut [u8]) {
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

/// Entity type index (0..4) of a CoNLL type name.
pub(super) fn type_index(name: &str) -> Option<usize> {
    TYPE_NAMES.iter().position(|&t| t == name)
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
}
