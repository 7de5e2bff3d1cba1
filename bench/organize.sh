#!/usr/bin/env bash
# files.organize benchmark (issue 19; target >= 5,000 files/s): N files in a workspace folder are
# sorted by type through a real job (`deskhand skills run`: skill load, plan, the guard's checks
# for every path, the move log, the moves, the audit entry) and then put back with
# `deskhand undo`. Wall-clock time of each command, process start included. Results are appended
# to bench/results/DATE.md.
#
#   bench/organize.sh                  # builds release, N=10000
#   DESKHAND=target/release/deskhand N=20000 bench/organize.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
N=${N:-10000}
if [[ -z "${DESKHAND:-}" ]]; then
  cargo build --release -p deskhand-agent
  DESKHAND="${CARGO_TARGET_DIR:-$PWD/target}/release/deskhand"
fi
WS=$(mktemp -d)
trap 'rm -rf "$WS"' EXIT
export DESKHAND_WORKSPACE="$WS"
python3 - "$WS" "$N" <<'PY'
import os, sys
ws, n = sys.argv[1], int(sys.argv[2])
inbox = os.path.join(ws, "inbox"); os.makedirs(inbox)
exts = ["png", "pdf", "csv", "zip", "mp3", "txt", "xlsx", "bin", "jpg", "md"]
for i in range(n):
    p = os.path.join(inbox, f"file-{i:06}.{exts[i % 10]}")
    with open(p, "w") as f: f.write(f"content of {i}\n" * (i % 7 + 1))
    os.utime(p, (1_700_000_000 + i * 3600, 1_700_000_000 + i * 3600))
os.makedirs(os.path.join(ws, "skills/sort-inbox"))
open(os.path.join(ws, "skills/sort-inbox/SKILL.md"), "w").write("---\nname: sort-inbox\ndescription: Sort the inbox.\n---\n# sort-inbox\n")
open(os.path.join(ws, "skills/sort-inbox/skill.yaml"), "w").write(
    "permissions:\n  workspace: [\"inbox/**\"]\n  without-asking: [move]\nsteps:\n  - id: sort\n    uses: files.organize\n"
    "    with:\n      folder: inbox\n      by: type\n      dry_run: false\n")
PY
"$DESKHAND" skills trust sort-inbox --yes >/dev/null
t0=$(date +%s.%N)
"$DESKHAND" skills run sort-inbox >/dev/null
t1=$(date +%s.%N)
JOB=$("$DESKHAND" jobs list --json | python3 -c 'import json,sys; print(next(j["id"] for j in json.load(sys.stdin) if j["skill"]=="sort-inbox"))')
t2=$(date +%s.%N)
"$DESKHAND" undo "$JOB" >/dev/null
t3=$(date +%s.%N)
left=$(find "$WS/inbox" -mindepth 1 -maxdepth 1 -type f | wc -l)
[[ "$left" == "$N" ]] || { echo "undo left $left of $N files in inbox" >&2; exit 1; }
out=$(python3 -c "import json; n=$N; s=$t1-$t0; u=$t3-$t2; print(json.dumps({'tool':'deskhand files.organize','files':n,'sort_s':round(s,3),'sort_files_per_s':round(n/s),'undo_s':round(u,3),'undo_files_per_s':round(n/u),'cores':$(nproc)}))")
echo "$out"
mkdir -p bench/results
{
  echo "## files.organize $(date -u +%FT%TZ) ($(nproc) cores)"
  echo '```json'
  echo "$out"
  echo '```'
} >> "bench/results/$(date -u +%F).md"
