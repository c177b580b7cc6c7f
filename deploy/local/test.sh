#!/usr/bin/env bash
# The test command (README, .ci/run): installs what is missing, builds, and runs every CTest
# suite - unit, accuracy (needs ../shared/data), integration and robustness (start their own
# Kafka broker on port 19092 through deploy/local/kafka.sh, and stop it afterwards).
# Extra arguments go to ctest, e.g. `deploy/local/test.sh -L unit` or `-R Kafka`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/common.sh"
build="${VIGIL_BUILD_DIR:-$VIGIL_ROOT/build}"
t0=$SECONDS

"$here/setup.sh"
# Formatting is decided by .clang-format, not argued about: a file it would change fails here
# (fix with `git ls-files '*.cpp' '*.h' | xargs clang-format-14 -i`).
log "checking the formatting of the C++ sources (clang-format-14)"
(cd "$VIGIL_ROOT" && if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
   git ls-files '*.cpp' '*.h'
 else
   find operators pipeline simulator tests bench fuzz schemas -name '*.cpp' -o -name '*.h'
 fi | xargs clang-format-14 --dry-run --Werror)
log "configuring and building in ${build#$VIGIL_ROOT/}"
cmake -S "$VIGIL_ROOT" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)"
log "running the tests"
status=0
ctest --test-dir "$build" --output-on-failure -j "$(nproc)" --timeout 900 "$@" || status=$?
# Leave nothing running, whatever happened to the fixture's cleanup.
VIGIL_KAFKA_PORT=19092 VIGIL_KAFKA_DATA="$build/test-kafka" "$here/kafka.sh" stop >/dev/null 2>&1 || true
# The SASL_SSL broker of the deploy tests (stop finds it by the pid file in its data dir).
VIGIL_KAFKA_DATA="$build/test-kafka-secure" "$here/kafka.sh" stop >/dev/null 2>&1 || true
log "tests finished in $((SECONDS - t0)) s (exit $status)"
exit $status
