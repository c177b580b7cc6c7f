#!/usr/bin/env bash
# promtool for the CTest suite: fails with a clear message when it is missing.
#   deploy/tests/promtool.sh check rules deploy/prometheus/vigil-rules.yaml
#   deploy/tests/promtool.sh test rules deploy/prometheus/tests/*.yaml
set -euo pipefail
if ! command -v promtool >/dev/null; then
  echo "promtool not found: it comes with the Debian package 'prometheus' (deploy/local/setup.sh installs it)" >&2
  exit 1
fi
exec promtool "$@"
