#!/usr/bin/env bash
# Builds and runs the libFuzzer targets (docs/fuzzing.md), idempotently:
#   1. installs clang-14 and libclang-rt-14-dev (libFuzzer, the sanitizer runtimes) if missing;
#   2. configures and builds build-fuzz/ (clang, VIGIL_FUZZ=ON: ASan + UBSan + coverage);
#   3. writes the seed corpora into build-fuzz/seeds/<target>/ (synthetic telemetry, snapshots,
#      patient configurations, cut-downs of ../shared/data and tests/data/golden);
#   4. runs each target for N seconds; the corpus grows in build-fuzz/corpus/<target>/, crashes,
#      timeouts, leaks and out-of-memory inputs land in build-fuzz/findings/<target>/ and each
#      run's log is appended to build-fuzz/findings/<target>.log;
#   5. prints target, seconds run, executions, execs/s, corpus size and findings; exits 1 if any target
#      found a crash, hang, leak or out-of-memory input.
# Usage: deploy/local/fuzz.sh [--seconds N] [--target NAME]... [--long]
#   --seconds N   time per target (default 60; --long: 3600)
#   --target NAME only this target (repeatable), e.g. fuzz_wfdb
#   --long        the long run for reports: an hour per target
# Environment: VIGIL_FUZZ_BUILD_DIR (default build-fuzz), VIGIL_SHARED_DATA (default
# ../shared/data beside the source tree, as for the tests), VIGIL_FUZZ_JOBS (build jobs, default 2).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/common.sh"

all_targets=(fuzz_telemetry fuzz_snapshot fuzz_patient_config fuzz_wfdb fuzz_edf fuzz_resmed)
seconds=""
long=0
targets=()
while (($#)); do
  case "$1" in
    --seconds) seconds="${2:?--seconds needs a value}"; shift 2 ;;
    --target) targets+=("${2:?--target needs a name}"); shift 2 ;;
    --long) long=1; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[[ -n "$seconds" ]] || seconds=$((long ? 3600 : 60))
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -gt 0 ]] || die "--seconds must be a positive integer"
((${#targets[@]})) || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  [[ " ${all_targets[*]} " == *" $t "* ]] || die "unknown target $t (known: ${all_targets[*]})"
done

build="${VIGIL_FUZZ_BUILD_DIR:-$VIGIL_ROOT/build-fuzz}"
data="${VIGIL_SHARED_DATA:-$VIGIL_ROOT/../shared/data}"
jobs="${VIGIL_FUZZ_JOBS:-2}"

# --- 1. packages (as setup.sh installs the build's) ------------------------------------------
packages=(clang-14 libclang-rt-14-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "Debian packages: installing ${missing[*]}"
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v clang++-14 >/dev/null || die "clang++-14 not found after installing clang-14"

# --- 2. build ----------------------------------------------------------------------------------
t0=$SECONDS
if [[ ! -f "$build/build.ninja" ]]; then
  log "configuring ${build#$VIGIL_ROOT/} (clang-14, VIGIL_FUZZ=ON)"
  cmake -S "$VIGIL_ROOT" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
    -DVIGIL_FUZZ=ON -DVIGIL_BUILD_TESTS=OFF -DVIGIL_BUILD_BENCH=OFF \
    -DVIGIL_SHARED_DATA="$data" >/dev/null
fi
log "building the fuzz targets (-j$jobs)"
cmake --build "$build" -j "$jobs" --target fuzz
log "build up to date after $((SECONDS - t0)) s"

# Sanitizer settings of every run (the suppressions are third-party false positives only).
export ASAN_OPTIONS="detect_leaks=1:symbolize=1:${ASAN_OPTIONS:-}"
export LSAN_OPTIONS="suppressions=$VIGIL_ROOT/fuzz/lsan.supp:print_suppressions=0:${LSAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"

# --- 3. seeds ----------------------------------------------------------------------------------
seeds="$build/seeds"
if [[ ! -f "$seeds/.complete" || "$build/fuzz/vigil_fuzz_seeds" -nt "$seeds/.complete" ]]; then
  log "writing seed corpora into ${seeds#$VIGIL_ROOT/}"
  [[ -d "$data" ]] || log "warning: $data missing: no WFDB / EDF / ResMed seeds (set VIGIL_SHARED_DATA)"
  rm -rf "$seeds"
  mkdir -p "$seeds"
  "$build/fuzz/vigil_fuzz_seeds" "$seeds" "$data" "$VIGIL_ROOT/tests/data/golden" \
    "$VIGIL_ROOT/fuzz/dict/patient_config.dict"
  touch "$seeds/.complete"
fi

# --- 4. runs -----------------------------------------------------------------------------------
declare -A dict=([fuzz_telemetry]=telemetry [fuzz_snapshot]=snapshot
                 [fuzz_patient_config]=patient_config [fuzz_wfdb]=wfdb [fuzz_edf]=edf
                 [fuzz_resmed]=resmed)
mkdir -p "$build/findings"
rows=()
failed=0
total=0
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t"
  artifacts="$build/findings/$t"
  mkdir -p "$corpus" "$artifacts"
  before=$(find "$artifacts" -maxdepth 1 -type f ! -name 'slow-unit-*' | wc -l)
  run_log="$build/findings/$t.run.log"
  log "$t: ${seconds} s"
  status=0
  started=$SECONDS
  touch "$run_log.start"
  "$build/fuzz/$t" "$corpus" "$seeds/$t" \
    -max_total_time="$seconds" -timeout=2 -rss_limit_mb=2048 -max_len=65536 \
    -dict="$VIGIL_ROOT/fuzz/dict/${dict[$t]}.dict" -artifact_prefix="$artifacts/" \
    -print_final_stats=1 -reload=0 >"$run_log" 2>&1 || status=$?
  ran=$((SECONDS - started))
  { printf '=== %s %s, %s s, exit %s ===\n' "$(date -Is)" "$t" "$seconds" "$status"; cat "$run_log"; } \
    >>"$build/findings/$t.log"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$run_log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$run_log" | tail -1)
  size=$(find "$corpus" -maxdepth 1 -type f | wc -l)
  # A timeout is a finding only if the input is slow on its own: on a loaded machine (a niced
  # campaign beside builds) an input of 40 ms can miss the 2-s alarm. Run alone, it must take
  # more than 2 s again; otherwise it moves to unconfirmed/ and the run counts no finding.
  for timeout_input in "$artifacts"/timeout-*; do
    [[ -f "$timeout_input" && "$timeout_input" -nt "$run_log.start" ]] || continue
    took=$("$build/fuzz/$t" "$timeout_input" -timeout=60 2>&1 | sed -n 's/^Executed .* in \([0-9]*\) ms$/\1/p')
    if [[ -n "$took" ]] && ((took < 2000)); then
      mkdir -p "$artifacts/unconfirmed"
      mv "$timeout_input" "$artifacts/unconfirmed/"
      log "$t: timeout not confirmed: the input took $took ms alone (moved to unconfirmed/)"
      status=0
    fi
  done
  after=$(find "$artifacts" -maxdepth 1 -type f ! -name 'slow-unit-*' | wc -l)
  found=$((after - before))
  if ((status != 0 && found == 0)); then found=1; fi  # e.g. a crash before the artifact was written
  if ((found > 0)); then
    failed=1
    log "$t: FINDING (exit $status), see ${artifacts#$VIGIL_ROOT/}/ and ${build#$VIGIL_ROOT/}/findings/$t.log:"
    grep -m3 -E '^==[0-9]+==ERROR|runtime error|==vigil-fuzz==|ALARM|out-of-memory|Deadly' "$run_log" >&2 || true
  fi
  total=$((total + ${execs:-0}))
  rows+=("$(printf '%-20s %8s %12s %9s %7s %8s' "$t" "$ran" "${execs:-?}" "${rate:-?}" "$size" "$found")")
done

# --- 5. summary --------------------------------------------------------------------------------
printf '%-20s %8s %12s %9s %7s %8s\n' target seconds executions execs/s corpus findings
printf '%s\n' "${rows[@]}"
printf '%-20s %8s %12s\n' total "" "$total"
exit $failed
