#!/usr/bin/env bash
# The Kafka- and Elasticsearch-facing tests against the previous majors the project supports
# (Kafka 3.9, Elasticsearch 8), on a second stack with its own directory and ports, so the main
# stack (Kafka 4.4, Elasticsearch 9) keeps running. `npm test` runs this after the main suite;
# `bash scripts/compat.sh [jest args]` runs it alone. `bash scripts/compat.sh down` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."

main_dir=$([[ $(id -u) -eq 0 ]] && echo /var/cache/cordon || echo "${XDG_CACHE_HOME:-$HOME/.cache}/cordon")
export CORDON_STACK_DIR=${CORDON_COMPAT_STACK_DIR:-$main_dir-compat}
export CORDON_KAFKA_VERSION=${CORDON_COMPAT_KAFKA_VERSION:-3.9.1}
export CORDON_ES_VERSION=${CORDON_COMPAT_ES_VERSION:-8.19.7}
export KAFKA_PORT=39092 KAFKA_CONTROLLER_PORT=39093 KAFKA_SASL_SSL_PORT=39094 KAFKA_MTLS_PORT=39095
export ES_PORT=39200 ES_TRANSPORT_PORT=39300
export CORDON_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT CORDON_ES_URL=http://127.0.0.1:$ES_PORT

if [[ ${1:-} == down ]]; then exec bash scripts/stack.sh down kafka elasticsearch; fi

# Every surface that speaks the Kafka or Elasticsearch protocol: the raw clients, intake, the
# correlator's transactions and commits, the ledger, containment, the service, the SIEM writer.
readonly SUITES=(
  test/stack.test.ts
  test/ingest/
  test/ledger/ledger.test.ts
  test/correlate/correlator.test.ts
  test/contain/containment.test.ts
  test/service.test.ts
  test/siem/service.test.ts
  test/siem/elastic-security.test.ts
  test/kafka-security.test.ts
)
existing=()
for s in "${SUITES[@]}"; do [[ -e $s ]] && existing+=("$s"); done

bash scripts/stack.sh up kafka elasticsearch
echo "[compat] Kafka $CORDON_KAFKA_VERSION and Elasticsearch $CORDON_ES_VERSION: ${existing[*]}"
npx jest --ci "$@" "${existing[@]}"
# stops Elasticsearch through scripts/stack.sh with this environment: the compat one, not the main
npx jest --ci --runInBand test/siem/elasticsearch.serial.test.ts
