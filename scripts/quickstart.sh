#!/usr/bin/env bash
# Cordon's main job on a recorded attack, end to end on the real local stack (`npm start`):
# stack up, build, then `cordon demo`: a real `cordon run` with the auto-quarantine playbook
# (20 s TTL), the recorded attack played into Kafka, and, printed as it happens, the incident,
# the playbook steps, the quarantine and its expiry, the rollback, `audit verify`, and the
# incident in Elasticsearch. As root (with nft), the recording's attacker and victim are real
# network namespaces and a connection between them is shown working, dropped, and working again;
# otherwise the enforcer runs dry and the output says so.
#   npm start [-- FILE | --recording FILE] [--ttl SECONDS] [--dry-run]
set -euo pipefail
cd "$(dirname "$0")/.."
# A bare first argument is the recording, as before.
if [[ $# -ge 1 && $1 != -* ]]; then set -- --recording "$(realpath "$1")" "${@:2}"; fi
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

[ -d node_modules ] || npm ci --no-fund --no-audit
say "local stack (Kafka, Elasticsearch, Redis, nftables)"
bash scripts/stack.sh up
say "building"
npm run -s build
# The demo cleans up its namespaces and stops the service itself, on success, failure or Ctrl-C.
exec ./bin/cordon demo "$@"
