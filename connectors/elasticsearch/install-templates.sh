#!/usr/bin/env bash
# Installs Cordon's index templates (ECS mappings) into Elasticsearch, for the default index
# prefix `cordon` and the namespace `default` (each template gives its index the alias
# logs-cordon.<dataset>-default, which Elastic Security's logs-* patterns read). Cordon installs the
# same templates itself at start when its user holds manage_index_templates; use this when that
# privilege stays with an administrator.
#
#   ES_URL=https://es.example:9200 ES_API_KEY=... bash connectors/elasticsearch/install-templates.sh
#   ES_URL=... ES_USER=elastic ES_PASSWORD=... ES_CA=/path/ca.pem bash connectors/elasticsearch/install-templates.sh
#
# The JSON files are generated from src/siem/ecs.ts (test/siem/ecs.test.ts fails when they drift;
# CORDON_UPDATE_CONNECTORS=1 npx jest test/siem/ecs rewrites them).
set -euo pipefail

ES_URL=${ES_URL:-http://127.0.0.1:9200}
dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/templates

args=(-fsS -H 'Content-Type: application/json')
if [[ -n ${ES_API_KEY:-} ]]; then
  args+=(-H "Authorization: ApiKey $ES_API_KEY")
elif [[ -n ${ES_USER:-} ]]; then
  args+=(-u "$ES_USER:${ES_PASSWORD:?ES_PASSWORD is required with ES_USER}")
fi
[[ -n ${ES_CA:-} ]] && args+=(--cacert "$ES_CA")

for file in "$dir"/*.json; do
  name=$(basename "$file" .json)
  printf 'PUT _index_template/%s ... ' "$name"
  curl "${args[@]}" -X PUT "$ES_URL/_index_template/$name" --data-binary "@$file"
  printf '\n'
done
