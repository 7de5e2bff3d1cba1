#!/usr/bin/env python3
"""Extraction benchmark, Python side.

    python3 bench/extract_py.py DIR SCHEMA.yaml

Extracts every *.html file in DIR with the schema (see
fixtures/sites/products/schema.yaml) twice, in one process each time:

  * "bs4-lxml":   BeautifulSoup(features="lxml") with select / select_one
  * "selectolax": selectolax.parser.HTMLParser with css / css_first
                  (selectolax >= 1.0 dropped that Modest engine; then its
                  Lexbor engine is used, and the line says "engine":"lexbor")

Files are read as bytes inside the timed loop. Prints one JSON line per tool:

  {"tool":"bs4-lxml","pages":..,"bytes":..,"records":..,"secs":..,"pages_per_s":..,"mb_per_s":..}

(MB = 10^6 bytes.) Exits non-zero if the two tools disagree on the record
count; a difference in the extracted values is reported on stderr.

Schema semantics:
  items:  CSS selector of the repeated element
  fields: name -> "css"            first match's text, trimmed, inner whitespace collapsed
                  "css@attr"       first match's attribute value
                  {css, attr?, optional?, list?}
                                   list: all matches (texts or attributes);
                                   optional: null when nothing matches
  next:   "css" or "css@attr"      next-page link, taken from the whole page
"""

import json
import os
import re
import sys
import time


# ---------------------------------------------------------------- schema ---

ATTR_RE = re.compile(r"^(.*\S)\s*@([A-Za-z_:][-A-Za-z0-9_:.]*)$")


def parse_spec(spec, where):
    """Normalise a field spec to a dict {css, attr, optional, list}."""
    if isinstance(spec, str):
        m = ATTR_RE.match(spec.strip())
        if m:
            return {"css": m.group(1), "attr": m.group(2), "optional": False, "list": False}
        return {"css": spec.strip(), "attr": None, "optional": False, "list": False}
    if isinstance(spec, dict):
        if "css" not in spec:
            raise ValueError(f"{where}: object form needs a 'css' key")
        unknown = set(spec) - {"css", "attr", "optional", "list"}
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
        css = str(spec["css"]).strip()
        attr = spec.get("attr")
        if attr is None:
            m = ATTR_RE.match(css)
            if m:
                css, attr = m.group(1), m.group(2)
        return {"css": css, "attr": attr, "optional": bool(spec.get("optional", False)),
                "list": bool(spec.get("list", False))}
    raise ValueError(f"{where}: expected a string or a mapping, got {type(spec).__name__}")


def _mini_yaml(text):
    """Parser for the tiny schema subset, used only when PyYAML is missing:
    top-level `key: scalar`, a `fields:` block of `name: scalar` or
    `name: { k: v, ... }` flow mappings."""

    def scalar(s):
        s = s.strip()
        if len(s) >= 2 and s[0] == s[-1] and s[0] in "\"'":
            return s[1:-1]
        if s in ("true", "True"):
            return True
        if s in ("false", "False"):
            return False
        if s in ("null", "~", ""):
            return None
        return s

    def flow_map(s):
        s = s.strip()[1:-1]
        out, buf, quote = {}, "", None
        parts = []
        for ch in s:
            if quote:
                buf += ch
                if ch == quote:
                    quote = None
            elif ch in "\"'":
                quote = ch
                buf += ch
            elif ch == ",":
                parts.append(buf)
                buf = ""
            else:
                buf += ch
        if buf.strip():
            parts.append(buf)
        for part in parts:
            k, _, v = part.partition(":")
            out[k.strip()] = scalar(v)
        return out

    root, current = {}, None
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        key, _, value = line.strip().partition(":")
        value = value.strip()
        target = root if indent == 0 else current
        if target is None:
            raise ValueError(f"schema: unexpected indentation: {raw!r}")
        if indent == 0 and value == "":
            current = root[key] = {}
            continue
        target[key] = flow_map(value) if value.startswith("{") else scalar(value)
    return root


def load_schema(path):
    with open(path, "r", encoding="utf-8") as fh:
        text = fh.read()
    try:
        import yaml  # PyYAML
        raw = yaml.safe_load(text)
    except ImportError:
        raw = _mini_yaml(text)
    if not isinstance(raw, dict) or "items" not in raw or "fields" not in raw:
        raise ValueError(f"{path}: schema needs 'items' and 'fields'")
    fields = [(name, parse_spec(spec, f"fields.{name}")) for name, spec in raw["fields"].items()]
    nxt = parse_spec(raw["next"], "next") if raw.get("next") else None
    return {"items": str(raw["items"]).strip(), "fields": fields, "next": nxt}


def clean(text):
    # trim + collapse inner whitespace (str.split() splits on any Unicode whitespace)
    return " ".join(text.split())


# ------------------------------------------------------------- extractors ---

def extract_bs4(data, schema, BeautifulSoup):
    soup = BeautifulSoup(data, features="lxml")

    def value(el, spec):
        if spec["attr"]:
            v = el.get(spec["attr"])
            if isinstance(v, list):  # multi-valued attributes such as class
                v = " ".join(v)
            return v
        return clean(el.get_text())

    def field(scope, spec):
        if spec["list"]:
            return [v for v in (value(e, spec) for e in scope.select(spec["css"])) if v is not None]
        el = scope.select_one(spec["css"])
        return None if el is None else value(el, spec)

    records = []
    for item in soup.select(schema["items"]):
        records.append({name: field(item, spec) for name, spec in schema["fields"]})
    nxt = field(soup, schema["next"]) if schema["next"] else None
    return records, nxt


def extract_selectolax(data, schema, HTMLParser):
    tree = HTMLParser(data)

    def value(node, spec):
        if spec["attr"]:
            return node.attributes.get(spec["attr"])
        return clean(node.text(deep=True, separator="", strip=False))

    def field(scope, spec):
        if spec["list"]:
            return [v for v in (value(n, spec) for n in scope.css(spec["css"])) if v is not None]
        node = scope.css_first(spec["css"])
        return None if node is None else value(node, spec)

    records = []
    for item in tree.css(schema["items"]):
        records.append({name: field(item, spec) for name, spec in schema["fields"]})
    nxt = field(tree, schema["next"]) if schema["next"] else None
    return records, nxt


def check_required(records, schema):
    """Count missing non-optional scalar fields (reported, not fatal)."""
    missing = 0
    for rec in records:
        for name, spec in schema["fields"]:
            if not spec["optional"] and not spec["list"] and rec.get(name) is None:
                missing += 1
    return missing


def selectolax_parser():
    """selectolax.parser.HTMLParser (Modest engine) where it exists; selectolax
    1.0 removed Modest, so fall back to its Lexbor engine, which has the same
    node API (css / css_first / text / attributes)."""
    try:
        from selectolax.parser import HTMLParser
        return HTMLParser, "modest"
    except ImportError:
        from selectolax.lexbor import LexborHTMLParser
        return LexborHTMLParser, "lexbor"


def run(tool, fn, files, schema, extra=None):
    total_bytes = 0
    n_records = 0
    results = []
    t0 = time.perf_counter()
    for path in files:
        with open(path, "rb") as fh:
            data = fh.read()
        total_bytes += len(data)
        records, nxt = fn(data, schema)
        n_records += len(records)
        results.append((records, nxt))
    secs = time.perf_counter() - t0
    line = {
        "tool": tool,
        "pages": len(files),
        "bytes": total_bytes,
        "records": n_records,
        "secs": round(secs, 4),
        "pages_per_s": round(len(files) / secs, 2) if secs > 0 else None,
        "mb_per_s": round(total_bytes / 1e6 / secs, 3) if secs > 0 else None,
    }
    line.update(extra or {})
    print(json.dumps(line, separators=(",", ":")), flush=True)
    return line, results


def main(argv):
    if len(argv) != 3:
        print("usage: python3 bench/extract_py.py DIR SCHEMA.yaml", file=sys.stderr)
        return 2
    directory, schema_path = argv[1], argv[2]
    schema = load_schema(schema_path)
    files = sorted(
        os.path.join(directory, f) for f in os.listdir(directory)
        if f.endswith(".html") and os.path.isfile(os.path.join(directory, f))
    )
    if not files:
        print(f"error: no *.html files in {directory}", file=sys.stderr)
        return 2

    from bs4 import BeautifulSoup
    HTMLParser, engine = selectolax_parser()

    line_a, res_a = run("bs4-lxml", lambda d, s: extract_bs4(d, s, BeautifulSoup), files, schema)
    line_b, res_b = run("selectolax", lambda d, s: extract_selectolax(d, s, HTMLParser), files, schema,
                        extra={"engine": engine})

    for tool, res in (("bs4-lxml", res_a), ("selectolax", res_b)):
        missing = sum(check_required(recs, schema) for recs, _ in res)
        if missing:
            print(f"warning: {tool}: {missing} required field values missing", file=sys.stderr)

    if line_a["records"] != line_b["records"]:
        print(f"error: record counts differ: bs4-lxml {line_a['records']} vs selectolax {line_b['records']}",
              file=sys.stderr)
        return 1
    diffs = 0
    for path, (ra, na), (rb, nb) in zip(files, res_a, res_b):
        if ra != rb or na != nb:
            diffs += 1
            if diffs <= 3:
                for a, b in zip(ra + [{"next": na}], rb + [{"next": nb}]):
                    if a != b:
                        print(f"warning: {os.path.basename(path)}: bs4-lxml {a} != selectolax {b}", file=sys.stderr)
                        break
    if diffs:
        print(f"warning: extracted values differ on {diffs} of {len(files)} pages", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
