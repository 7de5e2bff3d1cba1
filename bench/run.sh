#!/usr/bin/env bash
# Side-by-side benchmarks: Deskhand vs Playwright (form filling) and
# Deskhand vs BeautifulSoup/lxml and selectolax (extraction).
# See bench/README.md. Usage:
#
#   bench/run.sh                 # N=200 forms per tool, 1000 listing pages
#   N=50 bench/run.sh            # fewer forms
#   DESKHAND=/path/to/deskhand bench/run.sh   # skip the cargo build
#
# Environment: N (forms, default 200), LISTING_PAGES (default 1000),
# DESKHAND (prebuilt binary), CARGO_TARGET_DIR (honoured when building).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

N=${N:-200}
LISTING_PAGES=${LISTING_PAGES:-1000}
LISTING_DIR=bench/out/listing
SCHEMA=fixtures/sites/products/schema.yaml
VALUES=fixtures/sites/signup.values.json

log() { printf '==> %s\n' "$*" >&2; }

# ------------------------------------------------------------------ setup ---
if [[ -z "${DESKHAND:-}" ]]; then
  log "building deskhand (release)"
  cargo build --release -p deskhand-agent
  DESKHAND="${CARGO_TARGET_DIR:-$ROOT/target}/release/deskhand"
fi
if [[ ! -x "$DESKHAND" ]]; then
  echo "error: deskhand binary not found at $DESKHAND" >&2
  exit 1
fi

if [[ ! -d bench/node_modules/playwright-core ]]; then
  log "installing playwright-core into bench/node_modules (no browser download)"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix bench --no-save --no-package-lock \
    --no-audit --no-fund playwright-core@1
fi

PY=bench/.venv/bin/python
if ! { [[ -x "$PY" ]] && "$PY" -c 'import bs4, lxml, selectolax, yaml' 2>/dev/null; }; then
  log "creating bench/.venv with beautifulsoup4 lxml selectolax pyyaml"
  [[ -x "$PY" ]] || python3 -m venv bench/.venv
  "$PY" -m pip install --quiet beautifulsoup4 lxml selectolax pyyaml
fi

have_pages=0
if [[ -d "$LISTING_DIR" ]]; then
  have_pages=$(find "$LISTING_DIR" -maxdepth 1 -name 'page-*.html' | wc -l)
fi
if [[ "$have_pages" -ne "$LISTING_PAGES" ]]; then
  log "generating $LISTING_PAGES listing pages into $LISTING_DIR"
  rm -rf "$LISTING_DIR"
  "$PY" bench/gen_listing.py "$LISTING_PAGES" "$LISTING_DIR"
fi

mkdir -p bench/results
WORK=$(mktemp -d)
LOG="$WORK/output.log"

# -------------------------------------------------------------- benchmark ---
# Print the command's stdout and keep its last JSON line in $WORK/$1.json.
# Returns the command's exit status (explicitly, so callers inside `if` see it).
record() {
  local name=$1; shift
  local out rc=0
  out=$("$@") || rc=$?
  [[ -z "$out" ]] || printf '%s\n' "$out"
  if [[ $rc -eq 0 ]]; then
    printf '%s\n' "$out" | grep '^{' | tail -n 1 > "$WORK/$name.json" || true
  fi
  return "$rc"
}

SERVER_PIDS=()
stop_server() {
  local pid
  for pid in "${SERVER_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  SERVER_PIDS=()
}

# Serve a folder on a free port (in the background of this shell) and wait until it answers.
serve() {
  local dir=$1 var=$2 port
  port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  python3 -m http.server "$port" --bind 127.0.0.1 --directory "$dir" >>"$WORK/http.log" 2>&1 &
  SERVER_PIDS+=($!)
  python3 - "http://127.0.0.1:$port/" <<'EOF'
import sys, time, urllib.request
for _ in range(100):
    try:
        urllib.request.urlopen(sys.argv[1], timeout=1).read()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit("fixture server did not come up")
EOF
  printf -v "$var" 'http://127.0.0.1:%s' "$port"
}

bench_main() {
  trap stop_server EXIT

  local BASE WBASE
  serve fixtures/sites BASE
  serve fixtures/widgets WBASE
  echo "date:      $(date -Iseconds)"
  echo "commit:    $(git rev-parse --short HEAD 2>/dev/null || echo none)"
  echo "machine:   $(nproc) cores, $(uname -sr)"
  echo "chromium:  $(/usr/bin/chromium --version 2>/dev/null || echo unknown)"
  echo "node:      $(node --version), playwright-core $(node -p "require('./bench/node_modules/playwright-core/package.json').version")"
  echo "python:    $("$PY" -c 'import sys,bs4,lxml.etree as e,selectolax;print(sys.version.split()[0], "bs4", bs4.__version__, "lxml", ".".join(map(str,e.LXML_VERSION)), "selectolax", getattr(selectolax,"__version__","?"))')"
  echo "server:    $BASE  (N=$N forms, $LISTING_PAGES listing pages)"
  echo

  # The one-call floor right before and right after Deskhand's run, so a machine that slows down
  # or speeds up during the run moves both sides of the ratio alike.
  echo "--- fill: one-call floor, before"
  record nav_floor_pre node bench/nav_floor.mjs "$BASE" 50
  echo "--- fill: deskhand (cdp)"
  record fill_cdp "$DESKHAND" bench fill --url "$BASE/signup.html" --values "$VALUES" --n "$N"
  echo "--- fill: deskhand (webdriver)"
  if ! record fill_wd "$DESKHAND" bench fill --url "$BASE/signup.html" --values "$VALUES" --n "$N" --backend webdriver; then
    echo "(webdriver backend failed; continuing)"
    rm -f "$WORK/fill_wd.json"
  fi
  echo "--- fill: playwright"
  record fill_pw node bench/fill_playwright.mjs "$BASE" "$N"
  echo "--- fill: the browser's own navigation time (floor for any tool)"
  record nav_floor node bench/nav_floor.mjs "$BASE" 50

  echo "--- fill widgets (trip.html: date picker, autocomplete, slider): deskhand (cdp)"
  record wfill_cdp "$DESKHAND" bench fill --url "$WBASE/trip.html" --values fixtures/widgets/trip.values.json \
    --submit "Request trip" --n "$N"
  echo "--- fill widgets: playwright by hand"
  record wfill_pw node bench/fill_playwright.mjs "$WBASE" "$N" trip

  echo "--- extract: deskhand"
  record ext_dh "$DESKHAND" bench extract --dir "$LISTING_DIR" --schema "$SCHEMA"
  echo "--- extract: python"
  local pyout
  pyout=$("$PY" bench/extract_py.py "$LISTING_DIR" "$SCHEMA")
  printf '%s\n' "$pyout"
  printf '%s\n' "$pyout" | grep '"tool":"bs4-lxml"' > "$WORK/ext_bs4.json" || true
  printf '%s\n' "$pyout" | grep '"tool":"selectolax"' > "$WORK/ext_sx.json" || true

  echo
  python3 - "$WORK" <<'EOF'
import json, os, sys
work = sys.argv[1]

def load(name):
    try:
        with open(os.path.join(work, name + ".json")) as fh:
            text = fh.read().strip()
        return json.loads(text) if text else None
    except (OSError, ValueError):
        return None

def num(d, k):
    v = (d or {}).get(k)
    return float(v) if isinstance(v, (int, float)) else None

def fmt(v, nd=1):
    return "-" if v is None else f"{v:,.{nd}f}"

pw = load("fill_pw")
pw_ms = num(pw, "ms_per_form")
print("Form filling (signup.html, 20 fields, submit, wait for result)")
print(f"| {'tool':<20} | {'ms/form':>9} | {'p50 ms':>8} | {'p99 ms':>8} | {'/playwright':>11} |")
print(f"|{'-'*22}|{'-'*11}|{'-'*10}|{'-'*10}|{'-'*13}|")
for name, label in (("fill_cdp", "deskhand (cdp)"), ("fill_wd", "deskhand (webdriver)"), ("fill_pw", "playwright")):
    d = load(name)
    ms = num(d, "ms_per_form")
    ratio = ms / pw_ms if ms is not None and pw_ms else None
    print(f"| {label:<20} | {fmt(ms):>9} | {fmt(num(d, 'p50_ms')):>8} | {fmt(num(d, 'p99_ms')):>8} | {fmt(ratio, 3):>11} |")
cdp = num(load("fill_cdp"), "ms_per_form")
if cdp is not None and pw_ms:
    r = cdp / pw_ms
    print(f"target: deskhand <= 0.20 x playwright -> {r:.3f} {'PASS' if r <= 0.2 else 'MISS'}")
floor = num(load("nav_floor"), "floor_ms")
if floor is not None and pw_ms:
    print(f"browser floor (two navigations to DOMContentLoaded, no tool): {floor:.1f} ms = {floor / pw_ms:.3f} x playwright;"
          f" deskhand's own share {cdp - floor:.1f} ms, playwright's {pw_ms - floor:.1f} ms"
          f" ({(cdp - floor) / (pw_ms - floor):.3f} x)" if cdp is not None else "")
one = num(load("nav_floor"), "one_call_ms")
if one is not None and pw_ms:
    print(f"one-call floor (deskhand.js fillForm, one evaluate per form, through Playwright, no other tool work):"
          f" {one:.1f} ms = {one / pw_ms:.3f} x playwright; deskhand (cdp) is {cdp - one:+.1f} ms from it"
          if cdp is not None else "")
floors = [d for d in (load("nav_floor_pre"), load("nav_floor")) if d]
if floors and cdp is not None:
    med = sum(num(d, "one_call_ms") for d in floors) / len(floors)
    means = [num(d, "one_call_mean_ms") for d in floors if num(d, "one_call_mean_ms") is not None]
    p50 = num(load("fill_cdp"), "p50_ms")
    line = f"deskhand (cdp) against the one-call floor measured before and after it: median {p50:.1f} / {med:.1f} ms = {p50 / med:.3f}x"
    if means:
        mean = sum(means) / len(means)
        line += f", mean {cdp:.1f} / {mean:.1f} ms = {cdp / mean:.3f}x"
    print(line + " (target <= 1.1x)")
print()

wpw = num(load("wfill_pw"), "ms_per_form")
print("Widget form (trip.html: jQuery UI date picker 2 months on, jQuery UI autocomplete, range slider, submit)")
print(f"| {'tool':<20} | {'ms/form':>9} | {'p50 ms':>8} | {'p99 ms':>8} | {'/playwright':>11} |")
print(f"|{'-'*22}|{'-'*11}|{'-'*10}|{'-'*10}|{'-'*13}|")
for name, label in (("wfill_cdp", "deskhand (cdp)"), ("wfill_pw", "playwright by hand")):
    d = load(name)
    ms = num(d, "ms_per_form")
    ratio = ms / wpw if ms is not None and wpw else None
    print(f"| {label:<20} | {fmt(ms):>9} | {fmt(num(d, 'p50_ms')):>8} | {fmt(num(d, 'p99_ms')):>8} | {fmt(ratio, 3):>11} |")
print()

dh = load("ext_dh")
print("Extraction (listing pages, fixtures/sites/products/schema.yaml)")
print(f"| {'tool':<18} | {'pages':>6} | {'records':>8} | {'pages/s':>9} | {'MB/s':>8} | {'speedup':>8} |")
print(f"|{'-'*20}|{'-'*8}|{'-'*10}|{'-'*11}|{'-'*10}|{'-'*10}|")
dh_pps = num(dh, "pages_per_s")
for name, label in (("ext_dh", "deskhand-scraper"), ("ext_bs4", "bs4-lxml"), ("ext_sx", "selectolax")):
    d = load(name)
    pps = num(d, "pages_per_s")
    speed = dh_pps / pps if dh_pps and pps and name != "ext_dh" else None
    recs = (d or {}).get("records", "-")
    print(f"| {label:<18} | {fmt(num(d, 'pages'), 0):>6} | {recs!s:>8} | {fmt(pps):>9} | {fmt(num(d, 'mb_per_s'), 2):>8} | {(fmt(speed, 2) + 'x') if speed else '-':>8} |")
print("(speedup = deskhand pages/s divided by that tool's pages/s)")
for name, label in (("ext_bs4", "bs4-lxml"), ("ext_sx", "selectolax")):
    d = load(name)
    pps, mbs = num(d, "pages_per_s"), num(d, "mb_per_s")
    dmbs = num(dh, "mb_per_s")
    if dh_pps and pps and dmbs and mbs:
        ok = dh_pps > pps
        print(f"target: faster than {label}: {dh_pps / pps:.2f}x pages/s, {dmbs / mbs:.2f}x MB/s -> {'PASS' if ok else 'MISS'}")
    if dh and d and dh.get("records") != d.get("records"):
        print(f"warning: record count differs: deskhand {dh.get('records')} vs {label} {d.get('records')}")
EOF
}

# A function run on the left of `||` would have errexit switched off inside
# it, so run it in an explicit `set -e` subshell and read PIPESTATUS instead.
set +e
( set -e; bench_main ) 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
set -e

RESULTS="bench/results/$(date +%F).md"
suffix=""
[[ $status -eq 0 ]] || suffix=" (FAILED, exit $status)"
{
  echo "## $(date '+%F %T %Z')$suffix"
  echo
  echo '```'
  cat "$LOG"
  echo '```'
  echo
} >> "$RESULTS"
log "appended to $RESULTS"
rm -rf "$WORK"
exit "$status"
