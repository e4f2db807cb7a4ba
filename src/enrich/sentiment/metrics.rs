//! Evaluation metrics of ratings: Pearson correlation, 3-class labels and macro F1.

/// Pearson correlation.
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len()) as f64;
    if n < 2.0 {
        return 0.0;
    }
    let ma = a.iter().sum::<f64>() / n;
    let mb = b.iter().sum::<f64>() / n;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    if saa == 0.0 || sbb == 0.0 {
        0.0
    } else {
        sab / (saa * sbb).sqrt()
    }
}

/// 3-class label of a rating: 1 positive (> t), -1 negative (< -t), 0 neutral.
pub fn class(r: f64, t: f64) -> i8 {
    if r > t {
        1
    } else if r < -t {
        -1
    } else {
        0
    }
}

/// Macro-averaged F1 over the three classes.
pub fn macro_f1(gold: &[i8], pred: &[i8]) -> f64 {
    let mut total = 0.0;
    for c in [-1i8, 0, 1] {
        let tp = gold
            .iter()
            .zip(pred)
            .filter(|(g, p)| **g == c && **p == c)
            .count() as f64;
        let fp = gold
            .iter()
            .zip(pred)
            .filter(|(g, p)| **g != c && **p == c)
            .count() as f64;
        let fnn = gold
            .iter()
            .zip(pred)
            .filter(|(g, p)| **g == c && **p != c)
            .count() as f64;
        let p = if tp + fp == 0.0 { 0.0 } else { tp / (tp + fp) };
        let r = if tp + fnn == 0.0 {
            0.0
        } else {
            tp / (tp + fnn)
        };
        total += if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        };
    }
    total / 3.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_hand_checked() {
        assert!((pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]) - 1.0).abs() < 1e-12);
        assert!((pearson(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        // classes: gold [+,+,0,-], pred [+,0,0,-]: F1 pos 2/3, neutral 2/3, neg 1.
        let f = macro_f1(&[1, 1, 0, -1], &[1, 0, 0, -1]);
        assert!((f - (2.0 / 3.0 + 2.0 / 3.0 + 1.0) / 3.0).abs() < 1e-12);
    }
}
