//! Tagger labels to spans: the name heuristics (initials, nationality + government body) and
//! the merge of DATE/MONEY/PERCENT rule matches into the tagger's spans.

use super::super::EntityType;

/// Last words of organisation names that a preceding nationality belongs to.
pub(super) const GOV_HEADS: &[&str] = &[
    "Ministry",
    "Office",
    "Embassy",
    "Army",
    "Navy",
    "Parliament",
    "Government",
    "Council",
    "Agency",
    "Police",
    "Force",
    "Guard",
    "Cabinet",
    "Senate",
    "Assembly",
    "Court",
];

/// "S" or "S.": a single capital letter, possibly with a period.
pub(super) fn is_initial(word: &str) -> bool {
    let mut c = word.trim_end_matches('.').chars();
    matches!((c.next(), c.next()), (Some(x), None) if x.is_uppercase())
}

/// A span of one sentence's tokens: start, end, type, normalized value.
pub(super) type Span = (usize, usize, EntityType, Option<String>);

/// Merges rule matches into the tagger's spans: rules win over MISC (CoNLL has no dates),
/// names win over rules. Both lists are sorted and non-overlapping, so one forward walk
/// finds the overlaps. The tagger's kept spans come first, then the rules', as before.
pub(super) fn merge_rules(
    spans: Vec<Span>,
    rules: Vec<super::super::rules::RuleSpan>,
) -> Vec<Span> {
    if rules.is_empty() {
        return spans;
    }
    let mut removed = vec![false; spans.len()];
    let mut accepted = Vec::new();
    let mut k = 0;
    for r in rules {
        while k < spans.len() && spans[k].1 <= r.start {
            k += 1;
        }
        let overlapping = k..spans[k..]
            .iter()
            .position(|s| s.0 >= r.end)
            .map_or(spans.len(), |p| k + p);
        if spans[overlapping.clone()]
            .iter()
            .any(|s| s.2 != EntityType::Misc)
        {
            continue;
        }
        removed[overlapping].fill(true);
        accepted.push((r.start, r.end, r.kind, r.normalized));
    }
    let mut out: Vec<Span> = spans
        .into_iter()
        .zip(removed)
        .filter(|(_, gone)| !gone)
        .map(|(s, _)| s)
        .collect();
    out.extend(accepted);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_merge_like_the_pairwise_check_they_replace() {
        use crate::enrich::rules::RuleSpan;
        // The former quadratic merge, as the reference.
        fn reference(mut spans: Vec<Span>, rules: Vec<RuleSpan>) -> Vec<Span> {
            for r in rules {
                let overlaps = |s: &Span| s.0 < r.end && r.start < s.1;
                if spans.iter().any(|s| overlaps(s) && s.2 != EntityType::Misc) {
                    continue;
                }
                spans.retain(|s| !overlaps(s));
                spans.push((r.start, r.end, r.kind, r.normalized));
            }
            spans
        }
        // Sorted, non-overlapping spans from a pseudo-random walk.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % m) as usize
        };
        for _ in 0..500 {
            let (mut spans, mut rules) = (Vec::new(), Vec::new());
            let mut at = 0;
            for _ in 0..next(6) {
                at += next(3);
                let end = at + 1 + next(3);
                let kind = [EntityType::Misc, EntityType::Per, EntityType::Org][next(3)];
                spans.push((at, end, kind, None));
                at = end;
            }
            let mut at = 0;
            for _ in 0..next(6) {
                at += next(3);
                let end = at + 1 + next(3);
                rules.push(RuleSpan {
                    start: at,
                    end,
                    kind: EntityType::Date,
                    normalized: Some(format!("{at}")),
                });
                at = end;
            }
            assert_eq!(
                merge_rules(spans.clone(), rules.clone()),
                reference(spans, rules)
            );
        }
    }
}
