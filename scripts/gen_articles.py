#!/usr/bin/env python3
"""Writes N JSON Lines articles built from the repository's samples (distinct ids and
varied paragraphs), for throughput benchmarks. Usage: gen_articles.py N > articles.jsonl"""
import json
import pathlib
import random
import sys

root = pathlib.Path(__file__).resolve().parent.parent
seed = (root / "samples" / "seed-article.txt").read_text(encoding="utf-8")
title, _, body = seed.strip().partition("\n")
paragraphs = [p for p in body.split("\n\n") if p.strip()]
samples = [json.loads(line) for line in (root / "samples" / "articles.jsonl").read_text().splitlines()
           if line.strip().startswith("{") and '"poison' not in line]
rng = random.Random(42)
n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
for i in range(n):
    if i % 2 == 0:
        paras = rng.sample(paragraphs, k=min(len(paragraphs), 6))
        article = {"id": f"bench-{i}", "source": "Bench Wire", "title": title,
                   "body": "\n\n".join(paras), "published_at": "2022-11-03T10:00:00Z"}
    else:
        article = dict(rng.choice(samples))
        article["id"] = f"bench-{i}"
    print(json.dumps(article, ensure_ascii=False))
