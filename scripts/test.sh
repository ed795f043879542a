#!/usr/bin/env bash
# The whole test suite: installs dependencies, brings the real local stack up if it is not, type-checks,
# builds (some tests run the built `cordon` as a separate process), then runs jest; then the Kafka-
# and Elasticsearch-facing tests again against Kafka 3.9 and Elasticsearch 8 (scripts/compat.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-fund --no-audit
bash scripts/stack.sh up
bash scripts/browser.sh
npm run -s typecheck
npm run -s build
# Tests named *.serial.test.ts stop shared parts of the stack (Elasticsearch); they run alone, after the rest.
if [ $# -gt 0 ]; then
  npx jest --ci "$@"
else
  npx jest --ci --testPathIgnorePatterns '\.serial\.test\.ts$'
  npx jest --ci --runInBand --testPathPattern '\.serial\.test\.ts$'
  # the previous majors (Kafka 3.9, Elasticsearch 8) on a stack of their own
  bash scripts/compat.sh
fi
