#!/usr/bin/env python3
"""Build the L3S-GN1 extraction dev set (NAME.html + NAME.txt pairs) for
`newsflow eval extraction --data DIR`.

Source: L3S-GN1 (Kohlschuetter, Fankhauser, Nejdl, "Boilerplate Detection using Shallow
Text Features", WSDM 2010): 621 Google News article pages from 2007-08 with block-level
labels by human assessors. Get it from a checkout of https://github.com/geodrome/page-signal
at commit 186d8153b3d111f84865ddc180600a9cbe35ac7f, directory
L3S-GN1-20100130203947-00001/ (original/UUID.html, annotated/UUID.html, url-mapping.txt):

    git clone https://github.com/geodrome/page-signal
    git -C page-signal checkout 186d8153b3d111f84865ddc180600a9cbe35ac7f
    python3 scripts/extraction_l3s.py page-signal /tmp/l3s-tune              # 300 pages
    python3 scripts/extraction_l3s.py page-signal /tmp/l3s-check --split check  # 311 pages

SOURCE may be a checkout, its .git directory or a bare clone (all read with `git archive`
at that commit), or an unpacked L3S-GN1-20100130203947-00001 directory.

LICENCE: research use only. The dataset README grants "a non-exclusive, non-transferable,
worldwide, and royalty-free license to use the provided dataset for your research use only"
and asks users to cite the WSDM 2010 paper; the page texts belong to their publishers. So
the set is built locally and NEVER committed to this repository.

Dependencies: Python 3.9+, lxml and html5lib (pip install lxml html5lib), and git when
reading from a git directory.

For every page:
  * NAME.html = original/UUID.html, byte for byte (the files are already UTF-8; a page that
    is not valid UTF-8 is decoded with its declared charset and re-encoded as UTF-8).
  * NAME.txt  = the text of annotated/UUID.html whose nearest labelled ancestor carries the
    class x-nc-sel2 ("Full text"); headline (sel1), supplemental (sel3), related (sel4),
    comments (sel5) and unlabelled text are left out, as are elements marked x-nc-invisible,
    scripts and styles. Block-level elements separate paragraphs (blank line between them);
    whitespace inside a paragraph is collapsed to single spaces.
Pages are dropped when the body is empty or shorter than --min-tokens tokens, or when fewer
than --min-coverage of its 4-token shingles occur in the visible text of the original page as
an HTML5 parser sees it (10 of the 621 fail: originals cut off inside <title> or <script>,
and one page the annotated copy disagrees with). Of the 611 that pass, pages are taken in
sha1(UUID) order, at most --per-host per host, up to --limit: the defaults give the
300-page tuning set (--split tune); --split check gives the other 311 passing pages, kept
apart to check that heuristics were not tuned to the first set; --split all gives all 611.
Names are HOST-UUIDPREFIX; INDEX.tsv maps them to UUID, URL and coverage. The build is
deterministic.
"""
import argparse
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import warnings
from collections import Counter
from urllib.parse import urlparse

import html5lib
import lxml.etree
import lxml.html

COMMIT = "186d8153b3d111f84865ddc180600a9cbe35ac7f"
SUBDIR = "L3S-GN1-20100130203947-00001"
BODY_LABEL = "x-nc-sel2"

BLOCK = {
    "address", "article", "aside", "blockquote", "body", "br", "caption", "center", "dd",
    "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3",
    "h4", "h5", "h6", "header", "hr", "html", "li", "main", "nav", "ol", "p", "pre",
    "section", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul", "option",
    "select", "textarea", "iframe", "object", "embed", "img",
}
SKIP = {"script", "style", "noscript", "head", "title", "meta", "link", "template"}
PAGE_SKIP = {"script", "style", "noscript", "title", "textarea", "template"}
WORD = re.compile(r"\w+")


def label_of(el):
    """x-nc-selN class of el itself, or None."""
    cls = el.get("class") or ""
    for c in cls.split():
        if c.startswith("x-nc-sel"):
            return c
    return None


def is_invisible(el):
    return "x-nc-invisible" in (el.get("class") or "").split()


def annotated_body(html_bytes):
    """Paragraphs of the x-nc-sel2 text of an annotated L3S page."""
    doc = lxml.html.document_fromstring(html_bytes, parser=lxml.html.HTMLParser(encoding="utf-8"))
    paras, cur = [], []

    def flush():
        text = " ".join("".join(cur).split())
        if text:
            paras.append(text)
        cur.clear()

    def add(text, label):
        # Text outside the body still separates words (the annotator re-serialised the
        # page and put inter-tag whitespace outside the labelled spans).
        if text:
            cur.append(text if label == BODY_LABEL else " ")

    def walk(el, label):
        if not isinstance(el.tag, str):  # comments, processing instructions
            return
        tag = el.tag.lower()
        if tag in SKIP or is_invisible(el):
            cur.append(" ")
            return
        own = label_of(el) or label
        block = tag in BLOCK
        if block:
            flush()
        add(el.text, own)
        for child in el:
            walk(child, own)
            add(child.tail, own)
        if block:
            flush()

    walk(doc, None)
    flush()
    return paras


def page_text(html_bytes):
    """Visible body text of the original page as an HTML5 parser sees it (coverage check only).

    html5lib follows the WHATWG parsing algorithm, so a page with e.g. an unclosed <title>
    (several L3S originals are cut off inside it) yields the little text a browser would show.
    """
    doc = html5lib.parse(html_bytes, treebuilder="lxml", namespaceHTMLElements=False,
                         transport_encoding="utf-8")
    body = doc.find("body")
    if body is None:
        return ""
    out = []

    def walk(el):
        if isinstance(el.tag, str) and el.tag.lower() not in PAGE_SKIP:
            out.append(el.text or "")
            for child in el:
                walk(child)
                out.append(child.tail or "")

    walk(body)
    return " ".join(out)


def shingles(text, n=4):
    toks = WORD.findall(text)
    if not toks:
        return Counter()
    return Counter(" ".join(toks[i:i + n]) for i in range(max(len(toks) - n + 1, 1)))


def to_utf8(raw):
    try:
        raw.decode("utf-8")
        return raw, False
    except UnicodeDecodeError:
        m = re.search(rb"charset=[\"']?([\w-]+)", raw[:8192], re.I)
        enc = m.group(1).decode("ascii") if m else "windows-1252"
        try:
            return raw.decode(enc, errors="replace").encode("utf-8"), True
        except LookupError:
            return raw.decode("windows-1252", errors="replace").encode("utf-8"), True


def load_from_git(git_dir, commit):
    tar_bytes = subprocess.run(
        ["git", f"--git-dir={git_dir}", "archive", "--format=tar", commit,
         f"{SUBDIR}/original", f"{SUBDIR}/annotated", f"{SUBDIR}/url-mapping.txt"],
        check=True, capture_output=True).stdout
    files = {}
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tf:
        for m in tf.getmembers():
            if m.isfile():
                files[m.name[len(SUBDIR) + 1:]] = tf.extractfile(m).read()
    return files


def load_from_dir(src):
    files = {}
    for sub in ("original", "annotated"):
        for name in os.listdir(os.path.join(src, sub)):
            with open(os.path.join(src, sub, name), "rb") as f:
                files[f"{sub}/{name}"] = f.read()
    with open(os.path.join(src, "url-mapping.txt"), "rb") as f:
        files["url-mapping.txt"] = f.read()
    return files


def load(source, commit):
    """The dataset files from a checkout, a git directory or an unpacked dataset directory."""
    if os.path.isdir(os.path.join(source, "original")):
        return load_from_dir(source)
    if os.path.isdir(os.path.join(source, SUBDIR)) and not os.path.isdir(os.path.join(source, ".git")):
        return load_from_dir(os.path.join(source, SUBDIR))
    git_dir = os.path.join(source, ".git") if os.path.isdir(os.path.join(source, ".git")) else source
    return load_from_git(git_dir, commit)


def select(kept, urls, limit, per_host):
    """(host, item) for up to `limit` items in sha1 order, at most `per_host` per host."""
    per, chosen = Counter(), []
    for item in kept:
        host = urlparse(urls.get(item[1], "")).hostname or "unknown"
        if per_host and per[host] >= per_host:
            continue
        per[host] += 1
        chosen.append((host,) + item)
        if limit and len(chosen) >= limit:
            break
    return chosen


def main():
    warnings.filterwarnings("ignore", category=html5lib.constants.DataLossWarning)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", help="checkout or git dir of github.com/geodrome/page-signal, "
                    "or an unpacked L3S-GN1-20100130203947-00001 directory")
    ap.add_argument("out", help="directory to write NAME.html + NAME.txt pairs to")
    ap.add_argument("--commit", default=COMMIT, help="commit to read from a git source")
    ap.add_argument("--split", choices=("tune", "check", "all"), default="tune",
                    help="tune: the selection below; check: the passing pages it leaves out; "
                    "all: every passing page")
    ap.add_argument("--limit", type=int, default=300, help="pages in the tune split (0 = no limit)")
    ap.add_argument("--per-host", type=int, default=3, help="max pages per host in the tune split (0 = no cap)")
    ap.add_argument("--min-tokens", type=int, default=50)
    ap.add_argument("--min-coverage", type=float, default=0.9)
    args = ap.parse_args()

    files = load(args.source, args.commit)
    urls = {}
    for line in files["url-mapping.txt"].decode("utf-8").splitlines():
        m = re.match(r"<urn:uuid:([0-9a-f-]+)>\s+(\S+)", line)
        if m:
            urls[m.group(1)] = m.group(2)

    uuids = sorted(n[len("original/"):-5] for n in files if n.startswith("original/") and n.endswith(".html"))
    kept, dropped = [], Counter()
    for uuid in uuids:
        orig = files.get(f"original/{uuid}.html")
        ann = files.get(f"annotated/{uuid}.html")
        if orig is None or ann is None:
            dropped["missing file"] += 1
            continue
        if orig.startswith(b"version https://git-lfs") or ann.startswith(b"version https://git-lfs"):
            dropped["git-lfs pointer"] += 1
            continue
        paras = annotated_body(ann)
        body = "\n\n".join(paras)
        ntok = len(WORD.findall(body))
        if ntok == 0:
            dropped["empty body"] += 1
            continue
        if ntok < args.min_tokens:
            dropped[f"body < {args.min_tokens} tokens"] += 1
            continue
        html, converted = to_utf8(orig)
        truth, page = shingles(body), shingles(page_text(html))
        cov = sum(min(c, page[s]) for s, c in truth.items()) / sum(truth.values())
        if cov < args.min_coverage:
            dropped[f"coverage < {args.min_coverage}"] += 1
            continue
        kept.append((hashlib.sha1(uuid.encode()).hexdigest(), uuid, html, body, cov, converted))

    kept.sort()
    tune = select(kept, urls, args.limit, args.per_host)
    if args.split == "tune":
        chosen = tune
    else:
        everything = select(kept, urls, 0, 0)
        in_tune = {c[2] for c in tune}
        chosen = [c for c in everything if args.split == "all" or c[2] not in in_tune]

    if os.path.isdir(args.out) and os.listdir(args.out):
        # Only a directory this script built before (it has its INDEX.tsv) is emptied first.
        if not os.path.exists(os.path.join(args.out, "INDEX.tsv")):
            sys.exit(f"{args.out} is not empty and was not built by this script: refusing to "
                     "overwrite it")
        for name in os.listdir(args.out):
            if name.endswith((".html", ".txt")) or name == "INDEX.tsv":
                os.remove(os.path.join(args.out, name))
    os.makedirs(args.out, exist_ok=True)
    index = []
    for host, _, uuid, html, body, cov, converted in sorted(chosen, key=lambda c: (c[0], c[2])):
        slug = re.sub(r"[^a-z0-9.-]+", "-", host.lower().removeprefix("www."))[:40]
        name = f"{slug}-{uuid[:8]}"
        with open(os.path.join(args.out, name + ".html"), "wb") as f:
            f.write(html)
        with open(os.path.join(args.out, name + ".txt"), "w", encoding="utf-8") as f:
            f.write(body + "\n")
        index.append(f"{name}\t{uuid}\t{urls.get(uuid, '')}\t{cov:.3f}\t{'recoded' if converted else ''}")
    with open(os.path.join(args.out, "INDEX.tsv"), "w", encoding="utf-8") as f:
        f.write("name\tl3s_uuid\turl\tcoverage\tnote\n" + "\n".join(index) + "\n")

    print(f"source pages {len(uuids)}, passing filters {len(kept)}, "
          f"written {len(chosen)} ({args.split}) to {args.out}")
    for why, n in dropped.most_common():
        print(f"  dropped {n}: {why}")


if __name__ == "__main__":
    sys.exit(main())
