#!/usr/bin/env python3
"""Instruction counts per article (valgrind's callgrind): repeatable where wall-clock figures
are not. Runs `newsflow enrich` on one rayon thread twice per input, on N articles and on 1,
and prints (count(N) - count(1)) / (N - 1) for the whole process and the main stages, so
process start and model loading cancel out.

Usage: scripts/instructions.py [NEWSFLOW_BINARY] [ARTICLES_JSONL]
  default binary: target/release/newsflow; without ARTICLES_JSONL, only the seed article
  (src/enrich/testdata/seed-article.txt, repeated) is counted.
"""

import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# (label, a pattern that picks the function's line in callgrind_annotate's inclusive view)
STAGES = [
    ("whole process", None),
    ("enrichment (LocalEnricher::enrich)", r"LocalEnricher>::enrich \["),
    ("  tagging (NerModel::tag_document)", r"NerModel::tag_document \["),
    ("    feature lists (features)", r"ner::features::features \["),
    ("    weight-row sums (add_rows)", r"decode::add_rows::add_rows\w* \["),
    ("    token preparation (prepare)", r"enrich::ner::prepare \["),
    ("  sentiment (SentimentModel::rate)", r"SentimentModel::rate \["),
    ("  entity clustering", r"enrich::cluster::cluster \["),
    ("  rules (dates, money, percent)", r"enrich::rules::find \["),
    ("normalize", r"newsflow::normalize::normalize \["),
    ("  language detection (whatlang)", r"whatlang::core::detect::detect \["),
]


def counts(binary, path, workdir):
    out = os.path.join(workdir, "callgrind.out")
    env = dict(os.environ, RAYON_NUM_THREADS="1")
    subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary, "enrich",
         "--input", path, "--output", "/dev/null"],
        check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    text = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", out],
                          check=True, capture_output=True, text=True).stdout
    found = {}
    for label, pattern in STAGES:
        for line in text.splitlines():
            m = re.match(r"\s*([\d,]+) ", line)
            if not m:
                continue
            hit = "PROGRAM TOTALS" in line if pattern is None else re.search(pattern, line)
            if hit:
                found[label] = int(m.group(1).replace(",", ""))
                break
    return found


def report(title, binary, lines, workdir):
    many = os.path.join(workdir, "many.jsonl")
    one = os.path.join(workdir, "one.jsonl")
    with open(many, "w") as f:
        f.writelines(lines)
    with open(one, "w") as f:
        f.writelines(lines[:1])
    n = len(lines) - 1
    if n < 1:
        sys.exit(f"{title}: needs at least two articles")
    big, small = counts(binary, many, workdir), counts(binary, one, workdir)
    print(f"\n{title}: instructions per article ({len(lines)} minus 1 articles, one thread)")
    for label, _ in STAGES:
        if label in big:
            print(f"  {label:<40} {(big[label] - small.get(label, 0)) / n / 1e6:8.2f}M")


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/release/newsflow")
    with open(os.path.join(ROOT, "src/enrich/testdata/seed-article.txt")) as f:
        title, rest = f.read().split("\n", 1)
    body = rest.split("Leave a Reply")[0].strip()
    seed = [json.dumps({"id": f"s{i}", "title": title.strip(), "body": body}) + "\n"
            for i in range(100)]
    with tempfile.TemporaryDirectory() as workdir:
        report("seed article (426 tokens)", binary, seed, workdir)
        if len(sys.argv) > 2:
            with open(sys.argv[2]) as f:
                articles = [line for _, line in zip(range(201), f)]
            report(f"first {len(articles)} articles of {sys.argv[2]}", binary, articles, workdir)


if __name__ == "__main__":
    main()
