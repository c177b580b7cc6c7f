#!/usr/bin/env bash
# The unit tests (and with --robustness the robustness tests, against their own broker) built with
# AddressSanitizer and UndefinedBehaviorSanitizer (gcc, VIGIL_ASAN) in build-asan/: any report
# fails the run. deploy/local/test.sh runs the unit part; fuzzing is deploy/local/fuzz.sh.
#   deploy/local/sanitize.sh [--robustness]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/common.sh"
build="${VIGIL_ASAN_BUILD_DIR:-$VIGIL_ROOT/build-asan}"
robustness=0
[[ "${1:-}" == "--robustness" ]] && robustness=1
t0=$SECONDS

targets=(vigil_unit_tests)
((robustness)) && targets+=(vigil vigil_robustness_tests)
log "ASan+UBSan build of ${targets[*]} in ${build#$VIGIL_ROOT/}"
cmake -S "$VIGIL_ROOT" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVIGIL_ASAN=ON \
  -DVIGIL_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"
log "ASan+UBSan build finished after $((SECONDS - t0)) s"

# Any report is a failure: UBSan halts (the build has -fno-sanitize-recover), ASan aborts, and
# leaks count (LeakSanitizer).
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
status=0
"$build/tests/vigil_unit_tests" --gtest_brief=1 || status=$?
if ((robustness && status == 0)); then
  export VIGIL_KAFKA_PORT=19092 VIGIL_KAFKA_DATA="$build/test-kafka"
  "$here/kafka.sh" reset >/dev/null && "$here/kafka.sh" start
  "$build/tests/vigil_robustness_tests" --gtest_brief=1 || status=$?
  "$here/kafka.sh" stop >/dev/null 2>&1 || true
fi
log "sanitizer run finished in $((SECONDS - t0)) s (exit $status)"
exit $status
