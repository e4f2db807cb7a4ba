//! Scoring and candidate selection: paragraphs score into their ancestors, the best
//! container is chosen with its worthy siblings, and link-heavy or negatively weighted
//! parts inside it are dropped.

use super::SCORED_ANCESTORS;
use super::nodes::{Block, NONE, Node, Tag8};

/// Link density of an element: link characters over characters, in its kept blocks.
struct Density {
    chars: Vec<u64>,
    links: Vec<u64>,
    commas: Vec<u64>,
}

impl Density {
    fn new(blocks: &[Block], nodes: &[Node], strict: bool) -> Density {
        let mut chars = vec![0u64; blocks.len() + 1];
        let mut links = vec![0u64; blocks.len() + 1];
        let mut commas = vec![0u64; blocks.len() + 1];
        for (i, b) in blocks.iter().enumerate() {
            let live = b.owner != NONE && !nodes[b.owner as usize].dropped(strict);
            chars[i + 1] = chars[i] + if live { u64::from(b.chars) } else { 0 };
            links[i + 1] = links[i] + if live { u64::from(b.link_chars) } else { 0 };
            commas[i + 1] = commas[i] + if live { u64::from(b.commas) } else { 0 };
        }
        Density {
            chars,
            links,
            commas,
        }
    }

    fn chars(&self, n: &Node) -> u64 {
        self.chars[n.end_block as usize] - self.chars[n.first_block as usize]
    }

    fn commas(&self, n: &Node) -> u64 {
        self.commas[n.end_block as usize] - self.commas[n.first_block as usize]
    }

    fn of(&self, n: &Node) -> f32 {
        let chars = self.chars(n);
        if chars == 0 {
            return 0.0;
        }
        let links = self.links[n.end_block as usize] - self.links[n.first_block as usize];
        links as f32 / chars as f32
    }
}

fn contains(nodes: &[Node], outer: u32, inner: u32) -> bool {
    outer <= inner && inner < nodes[outer as usize].end_node
}

/// What a scoring pass leaves out, as readability's flags: each pass after the first turns
/// one more off when the one before found too little text.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pass {
    /// Unlikely candidates (navigation, comments...) are left out.
    pub(super) strict: bool,
    /// Class and id weights count in scores and in the clean-up.
    pub(super) weights: bool,
    /// The conditional clean-up runs inside the chosen content.
    pub(super) clean: bool,
}

impl Pass {
    /// Readability's order: unlikely candidates, then class weights, then the clean-up.
    pub(super) const LADDER: [Pass; 4] = [
        Pass {
            strict: true,
            weights: true,
            clean: true,
        },
        Pass {
            strict: false,
            weights: true,
            clean: true,
        },
        Pass {
            strict: false,
            weights: false,
            clean: true,
        },
        Pass {
            strict: false,
            weights: false,
            clean: false,
        },
    ];

    fn weight(self, n: &Node) -> f32 {
        if self.weights {
            f32::from(n.weight)
        } else {
            0.0
        }
    }
}

/// Scores the page and returns which blocks to keep and a confidence, or `None` when no
/// paragraph was worth scoring.
pub(super) fn choose(nodes: &[Node], blocks: &[Block], pass: Pass) -> Option<(Vec<bool>, f32)> {
    let strict = pass.strict;
    let density = Density::new(blocks, nodes, strict);
    let mut score: Vec<Option<f32>> = vec![None; nodes.len()];
    let init = |i: usize| nodes[i].tag.base_score() + pass.weight(&nodes[i]);
    for b in blocks {
        if b.owner == NONE || b.chars < 25 {
            continue;
        }
        let owner = &nodes[b.owner as usize];
        if owner.dropped(strict) || !owner.tag.scores_text() {
            continue;
        }
        let points = 1.0 + b.commas.min(100) as f32 + (b.chars / 100).min(3) as f32;
        let mut a = owner.parent;
        // The block's own container counts as level 0 when the text sits directly in a
        // div or similar (readability turns such divs into paragraphs).
        for level in 0..SCORED_ANCESTORS {
            if a == NONE {
                break;
            }
            let i = a as usize;
            let divider = match level {
                0 => 1.0,
                1 => 2.0,
                l => l as f32 * 3.0,
            };
            *score[i].get_or_insert_with(|| init(i)) += points / divider;
            a = nodes[i].parent;
        }
    }
    let finals: Vec<(u32, f32)> = score
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.map(|s| (i as u32, s * (1.0 - density.of(&nodes[i])))))
        .filter(|&(i, _)| !nodes[i as usize].dropped(strict))
        .collect();
    let &(mut top, mut top_score) = finals
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))?;
    let final_of = |i: u32| -> Option<f32> {
        score[i as usize].map(|s| s * (1.0 - density.of(&nodes[i as usize])))
    };
    // Several near-best candidates under one ancestor: that ancestor is the content.
    let mut best: Vec<(u32, f32)> = finals.clone();
    best.sort_by(|a, b| b.1.total_cmp(&a.1));
    let alternatives: Vec<u32> = best
        .iter()
        .skip(1)
        .take(4)
        .filter(|(_, s)| *s >= 0.75 * top_score)
        .map(|(i, _)| *i)
        .collect();
    if alternatives.len() >= 3 {
        let mut p = nodes[top as usize].parent;
        while p != NONE && nodes[p as usize].tag != Tag8::Body {
            let inside = alternatives
                .iter()
                .filter(|&&a| contains(nodes, p, a))
                .count();
            if inside >= 3 {
                top = p;
                break;
            }
            p = nodes[p as usize].parent;
        }
    }
    // Climb while the parent scores about as well (bounded by the depth cap).
    let mut last = final_of(top).unwrap_or(top_score);
    let mut p = nodes[top as usize].parent;
    while p != NONE && nodes[p as usize].tag != Tag8::Body {
        match final_of(p) {
            None => {}
            Some(s) if s < last / 3.0 => break,
            Some(s) if s > last => {
                top = p;
                break;
            }
            Some(s) => last = s,
        }
        p = nodes[p as usize].parent;
    }
    // An only child stands for its parent.
    while let Some(parent) = Some(nodes[top as usize].parent).filter(|&p| p != NONE) {
        if nodes[parent as usize].children != 1 || nodes[parent as usize].tag == Tag8::Body {
            break;
        }
        top = parent;
    }
    top_score = final_of(top).unwrap_or(top_score).max(top_score);
    // The content: the top candidate and its worthy siblings.
    let mut include = vec![top];
    let parent = nodes[top as usize].parent;
    if parent != NONE {
        let threshold = (top_score * 0.2).max(10.0);
        let mut s = parent + 1;
        while s < nodes[parent as usize].end_node {
            let sib = &nodes[s as usize];
            if s != top && !sib.dropped(strict) {
                let ld = density.of(sib);
                let len = density.chars(sib);
                // Readability's bonus for a sibling with the content's class.
                let top_class = nodes[top as usize].class_hash;
                let bonus = if top_class != 0 && sib.class_hash == top_class {
                    top_score * 0.2
                } else {
                    0.0
                };
                let worthy = final_of(s).is_some_and(|v| v + bonus >= threshold)
                    || (sib.tag == Tag8::P && ((len > 80 && ld < 0.25) || (len > 0 && ld == 0.0)));
                if worthy {
                    include.push(s);
                }
            }
            s = sib.end_node;
        }
    }
    include.sort_unstable();
    // Inside the content, drop what readability's conditional clean-up drops.
    let mut removed_until = 0u32;
    // `include` holds disjoint subtrees, so marking their elements is one pass over at
    // most all elements, and a block is then kept or not by its owner alone.
    let mut keep_node = vec![false; nodes.len()];
    for &root in &include {
        for i in root..nodes[root as usize].end_node {
            let n = &nodes[i as usize];
            if i < removed_until {
                continue;
            }
            let removed =
                i != root && pass.clean && remove_conditionally(n, &density, pass.weight(n));
            if n.dropped(strict) || removed {
                removed_until = n.end_node;
            } else {
                keep_node[i as usize] = true;
            }
        }
    }
    let mut keep = vec![false; blocks.len()];
    for (k, b) in keep.iter_mut().zip(blocks) {
        if b.owner == NONE {
            continue;
        }
        let owner = &nodes[b.owner as usize];
        // Link lines straight in a container (menus, "read more" rows) go; links that
        // are a paragraph or a list item of the article stay.
        let linky = b.chars > 0
            && b.link_chars * 2 > b.chars
            && matches!(
                owner.tag,
                Tag8::Div | Tag8::Section | Tag8::Td | Tag8::OtherBlock | Tag8::TableRows
            );
        *k = keep_node[b.owner as usize] && !linky;
    }
    let confidence = (top_score / (top_score + 20.0)).clamp(0.0, 1.0);
    Some((keep, (confidence * 100.0).round() / 100.0))
}

/// Readability's `_cleanConditionally`, on an element inside the chosen content (`weight`:
/// its class weight, 0 when the pass ignores weights). As in readability, a table's rows
/// and row groups are not judged on their own: in a layout table the article's cell sits in
/// a row with the spacer images around it.
fn remove_conditionally(n: &Node, density: &Density, weight: f32) -> bool {
    if !matches!(
        n.tag,
        Tag8::Form | Tag8::Table | Tag8::List | Tag8::Div | Tag8::Section | Tag8::OtherBlock
    ) {
        return false;
    }
    // Readability checks the class weight alone here (its content score counts as 0).
    if weight < 0.0 {
        return true;
    }
    if density.commas(n) >= 10 {
        return false;
    }
    let [p, img, li, input, embeds] = n.counts;
    let is_list = n.tag == Tag8::List;
    let len = density.chars(n);
    let ld = density.of(n);
    let li = li.saturating_sub(100);
    (img > 1 && (p as f32) / (img as f32) < 0.5 && !is_list)
        || (!is_list && li > p)
        || (input > p / 3 && input > 0)
        || (!is_list && len < 25 && (img == 0 || img > 2) && embeds == 0 && len > 0)
        || (!is_list && weight < 25.0 && ld > 0.2)
        || (weight >= 25.0 && ld > 0.5)
        || ((embeds == 1 && len < 75) || embeds > 1)
}
