#!/usr/bin/env python3
"""Builds the extraction dev set from Mozilla Readability's test pages (Apache-2.0).

Usage: prepare.py READABILITY_REPO_DIR  (a checkout of github.com/mozilla/readability)

For each page listed below, writes NAME.html (the test page's source.html with scripts other
than JSON-LD, styles, comments and inline SVG removed, to keep the set small; none of those
hold article text) and NAME.txt (the text of the test's expected.html: one paragraph per
block, blank line between paragraphs).
"""
import html.parser, pathlib, re, sys

PAGES = """aclu aktualne ars-1 bbc-1 blogger buzzfeed-1 citylab-1 cnet cnn
daringfireball-1 dropbox-blog ehow-1 firefox-nightly-blog gitlab-blog gmw
guardian-1 heise herald-sun-1 iab-1 la-nacion lemonde-1 liberation-1 lwn-1 medicalnewstoday
medium-1 medium-2 mozilla-1 msn nytimes-1 quanta-1 seattletimes-1
simplyfound-1 spiceworks telegraph theverge tmz-1 topicseed-1 tumblr v8-blog wapo-1 wapo-2
webmd-1 wordpress yahoo-4 youth""".split()

BLOCKS = set("""address article aside blockquote br dd div dl dt figcaption figure footer h1 h2
h3 h4 h5 h6 header hr li main nav ol p pre section table td th tr ul""".split())


class Text(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts, self.skip = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.skip += 1
        if tag in BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self.skip = max(0, self.skip - 1)
        if tag in BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)

    def text(self):
        lines = (" ".join(l.split()) for l in "".join(self.parts).split("\n"))
        return "\n\n".join(l for l in lines if l) + "\n"


def slim(src):
    src = re.sub(r"<!--.*?-->", "", src, flags=re.S)
    src = re.sub(r"<script\b(?![^>]*ld\+json)[^>]*>.*?</script\s*>", "", src, flags=re.S | re.I)
    src = re.sub(r"<style\b[^>]*>.*?</style\s*>", "", src, flags=re.S | re.I)
    src = re.sub(r"<svg\b[^>]*>.*?</svg\s*>", "<svg></svg>", src, flags=re.S | re.I)
    src = re.sub(r"\s(?:data-[\w-]+|srcset|sizes)=(\"[^\"]*\"|'[^']*')", "", src)
    return re.sub(r"\n\s*\n+", "\n", src)


def main():
    repo = pathlib.Path(sys.argv[1]) / "test" / "test-pages"
    out = pathlib.Path(__file__).parent
    for name in PAGES:
        source = (repo / name / "source.html").read_text(encoding="utf-8")
        expected = (repo / name / "expected.html").read_text(encoding="utf-8")
        (out / f"{name}.html").write_text(slim(source), encoding="utf-8")
        t = Text()
        t.feed(expected)
        (out / f"{name}.txt").write_text(t.text(), encoding="utf-8")


if __name__ == "__main__":
    main()
