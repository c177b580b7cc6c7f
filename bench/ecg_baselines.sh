#!/usr/bin/env bash
# Compares Vigil's QRS detection with NeuroKit2 (ecg_peaks, default method) and WFDB's XQRS on
# the MIT-BIH records: Se/+P by the same EC57 scoring (`vigil eval`) and speed ratios.
# Creates bench/.venv (git-ignored) with NeuroKit2 and wfdb from PyPI on first use: an
# evaluation helper only, never a runtime dependency. Needs the build (build/pipeline/vigil,
# build/bench/ecg_chain_bench).
#   bench/ecg_baselines.sh [--records 101,106] [--detectors neurokit2,xqrs] [--json out.json]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c "import neurokit2, wfdb" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet neurokit2 wfdb
fi
exec "$venv/bin/python" "$here/ecg_baselines.py" "$@"
