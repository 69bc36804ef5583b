#!/usr/bin/env bash
# Installs the programs the tests drive for real: Graphviz's `dot` (graph --format svg) and
# headless Chromium (the run report, checked in a browser). Debian packages; skipped when present.
set -euo pipefail
missing=()
command -v dot >/dev/null || missing+=(graphviz)
command -v chromium >/dev/null || missing+=(chromium fonts-dejavu-core)
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
dot -V
chromium --version
