#!/usr/bin/env python3
"""Writes the hostile-input corpus: one JSON record per class, each just under SIZE bytes.

    python3 scripts/gen_hostile.py OUT_DIR [SIZE]     (default SIZE 1,000,000)

Used by scripts/hostile_bench.sh (worst time and peak memory per 1 MiB record) and as the
seed corpus of the fuzz targets (fuzz/README.md). The same classes, smaller, are built in
Rust by tests/hostile.rs; keep the two lists in step.
"""
import json
import os
import sys


def fill(size, prefix, unit, suffix=""):
    n = max(0, (size - len(prefix) - len(suffix)) // len(unit))
    return prefix + unit * n + suffix


def classes(size):
    s = size
    html = {
        "nested_distinct_formatting": fill(s, "<p>" + "".join(f"<b id={i}>" for i in range(500)), "<p>x"),
        "wide_table": "<table><tr><td>" + "x" * (s // 10) + "<tr><td>a" * (s // 10),
        "nested_blockquote": fill(s, "", "<blockquote>x"),
        "nested_lists": fill(s, "", "<ul><li>x"),
        "unclosed_divs": fill(s, "", "<div>"),
        "deep_inline": fill(s, "", "<span><a href=x><i>"),
        "many_attributes": fill(s, "<p ", 'a="b" ', ">text</p>"),
        "huge_class": fill(s, '<div class="', "sidebar content ", '">text</div>'),
        "entities": fill(s, "<p>", "&amp;&#x1F600;&nbsp;&unknown;"),
        "unterminated_comment": fill(s, "<p>a</p><!--", "x"),
        "script_never_closed": fill(s, "<p>a</p><script>", "var x = '<p>';"),
        "many_paragraphs": fill(s, "<article>", "<p>Short line, with a comma.</p>"),
        "json_ld_flood": fill(s, '<script type="application/ld+json">{"articleBody":"', "a b c ", '"}</script>'),
        # A JSON-LD block just under the parser's 256 KiB cap, of the costliest shape to
        # parse (one map per 7 bytes), then paragraphs for the rest of the page.
        "json_ld_objects": fill(s, '<script type="application/ld+json">['
                                + '{"":0},' * (250_000 // 7) + '{}]</script>', "<p>x"),
        "foreign_content": fill(s, "<svg><math>", "<mi>x</mi><foreignObject><p>y"),
        "nul_and_controls": fill(s, "<p>", "a\u0000\u0001\u001b[31m\ufeff"),
        # Short lines that are all page chrome (copyright, byline, dateline): nothing is left
        # after the chrome check, so every pass of the retry ladder runs and checks each one.
        "chrome_lines": fill(s, "<div>", "<p>© 2008 Daily News</p><p>By John Smith</p>"
                             "<p>Saturday, January 5th 2008</p>"),
    }
    body = {
        "initials_run": fill(s, "", "S "),
        "percent_numbers": " ".join(f"{100000 + i} %" for i in range(s // 10)),
        "one_long_sentence": fill(s, "", "Anna Berg met Oslo officials "),
        "no_spaces": "A" * s,
        "capitalised_words": " ".join(f"Name{i} Word{i}" for i in range(s // 20)),
        "repeated_entity": fill(s, "", "&a "),
        "money_dates": fill(s, "", "$5 billion on Friday, 12 May 2021, up 3.5 percent. "),
        "newlines": "\n" * s,
        "combining_marks": fill(s, "a", "\u0301"),
        "mixed_scripts": fill(s, "", "Москва 東京 القاهرة Paris "),
    }
    out = {}
    for name, h in html.items():
        out["html_" + name] = {"url": f"https://example.com/{name}", "html": h}
    for name, b in body.items():
        out["body_" + name] = {"title": "Hostile " + name, "body": b}
    out["date_far_future"] = {
        "title": "Far future",
        "published_at": "+262142-12-31",
        "body": "It happens tomorrow, on Friday, and next Monday.",
    }
    out["url_credentials"] = {
        "url": "https://user:secret@Example.com/a?token=abc&id=1",
        "title": "Credentials",
        "body": "Text.",
    }
    out["id_path_tricks"] = {"id": "../../etc/passwd", "title": "Bad id", "body": "Text."}
    return out


def main():
    out_dir = sys.argv[1]
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    os.makedirs(out_dir, exist_ok=True)
    for name, record in classes(size).items():
        line = json.dumps(record, ensure_ascii=False)
        # Keep every record under the 1 MiB input limit.
        while len(line.encode()) >= (1 << 20):
            for k in ("html", "body"):
                if k in record:
                    record[k] = record[k][: len(record[k]) * 9 // 10]
            line = json.dumps(record, ensure_ascii=False)
        with open(os.path.join(out_dir, name + ".json"), "w", encoding="utf-8") as f:
            f.write(line + "\n")
    print(f"{len(classes(16))} classes written to {out_dir}")


if __name__ == "__main__":
    main()
