#!/usr/bin/env bash
# Connector sync benchmark: full sync of 10,000 messages and 5,000 events from the fake providers
# on loopback, then an incremental sync after 50 changes; appends to bench/results/<date>.md.
# Targets: full mail >= 1,000 messages/s, incremental < 1 s, requests within 5% of the minimum.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
out="bench/results/$(date -u +%F).md"
cargo bench -p deskhand-connectors --bench sync --quiet >/dev/null 2>&1 || true   # build first
{
  printf '\n## %s — connector sync (`bench/sync.sh`)\n\n```\n' "$(date -u '+%F %T UTC')"
  echo "commit:  $(git rev-parse --short HEAD)"
  echo "machine: $(nproc) cores, $(uname -sr)"
  cargo bench -p deskhand-connectors --bench sync --quiet 2>/dev/null
  echo '```'
} | tee -a "$out"
