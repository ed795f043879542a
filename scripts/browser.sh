#!/usr/bin/env bash
# Headless Chromium for the console's end-to-end tests (test/console): Debian's `chromium`,
# driven by playwright-core. Idempotent and quiet when /usr/bin/chromium is already there.
#   bash scripts/browser.sh
set -euo pipefail
readonly CHROMIUM=${CORDON_CHROMIUM:-/usr/bin/chromium}

[[ -x $CHROMIUM ]] && exit 0
command -v apt-get >/dev/null || { echo "[browser] $CHROMIUM is missing and there is no apt-get: install Chromium by hand" >&2; exit 1; }
sudo=()
(($(id -u) == 0)) || sudo=(sudo -n)
echo "[browser] installing Debian chromium (for the console's browser tests)" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq >/dev/null
"${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
[[ -x $CHROMIUM ]] || { echo "[browser] chromium installed but $CHROMIUM is not there" >&2; exit 1; }
echo "[browser] $("$CHROMIUM" --version 2>/dev/null || echo chromium) ready" >&2
