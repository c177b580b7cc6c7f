#!/usr/bin/env bash
# Trains the AF model (issue 18) and writes models/ecg_af.model.
#
#   training/train_af.sh            export features, cross-validate, train, write the model
#   training/train_af.sh --no-write cross-validate and report only
#
# 1. Features: every record of ../shared/data/cinc2017-train (training only: cinc2017/ and the
#    MIT-BIH records are the test sets and are never read here) goes through `vigil replay`
#    with ecg.arrhythmia.af_feature_trace=1 and --measurements: the AF detector's own C++ code
#    writes each beat window's model inputs, so training and serving cannot compute them
#    differently. Written to build/training/af-features/ (kept; delete to re-export).
# 2. training/train_af.py (Python venv in training/.venv, created here: numpy, scikit-learn,
#    LightGBM, pinned in training/requirements.txt) cross-validates by record, picks
#    af_probability_min on the out-of-fold predictions, trains on all records and writes the
#    model with test vectors for the C++ evaluator (tests/data/af_model_vectors.csv).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
build="${VIGIL_BUILD_DIR:-$root/build}"
data="${VIGIL_SHARED_DATA:-$root/../shared/data}/cinc2017-train"
features="$build/training/af-features"
vigil="$build/pipeline/vigil"
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

[[ -f "$data/REFERENCE.csv" ]] || { log "missing $data/REFERENCE.csv (../shared/data/cinc2017-train)"; exit 1; }
[[ -x "$vigil" ]] || { log "build first: cmake --build $build --target vigil"; exit 1; }

venv="$here/.venv"
if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c "import lightgbm, sklearn" 2>/dev/null; then
  log "creating $venv (numpy, scikit-learn, LightGBM from PyPI)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet -r "$here/requirements.txt"
fi

t0=$SECONDS
if [[ ! -f "$features/.complete" ]]; then
  log "exporting window features of $(($(wc -l <"$data/REFERENCE.csv") - 1)) records into ${features#$root/}"
  rm -rf "$features"
  mkdir -p "$features"
  # The export serves no model (af_model=0), but the binary validates the model it would serve
  # at start: a model of no trees over train_af.py's feature list stands in, so that a list that
  # differs from the C++ one (af_model.h) fails here, naming both, and a stale model does not.
  placeholder="$build/training/placeholder.model"
  "$venv/bin/python" "$here/train_af.py" --placeholder "$placeholder"
  tail -n +2 "$data/REFERENCE.csv" | cut -d, -f1 |
    xargs -P "$(nproc)" -I{} "$vigil" replay "$data/{}" --out "$features/{}.jsonl" --no-beats \
      --no-aggregates --measurements --set ecg.arrhythmia.af_feature_trace=1 --set ecg.arrhythmia.af_model=0 \
      --af-model "$placeholder" 2>"$features/export.log" >/dev/null || { tail -3 "$features/export.log"; exit 1; }
  touch "$features/.complete"
  log "features exported in $((SECONDS - t0)) s"
fi
"$venv/bin/python" "$here/train_af.py" --features "$features" --reference "$data/REFERENCE.csv" \
  --model "$root/models/ecg_af.model" --vectors "$root/tests/data/af_model_vectors.csv" "$@"
