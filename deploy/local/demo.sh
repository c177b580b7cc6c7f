#!/usr/bin/env bash
# The demo (README's first command). Installs what is missing, builds, starts the local Kafka
# broker and checks it end to end with `vigil doctor`.
#   --for <seconds>  stop by itself after that long (tests); default: until Ctrl-C
#   --keep           leave the broker running on exit
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/common.sh"
build="${VIGIL_BUILD_DIR:-$VIGIL_ROOT/build}"
run_for=""
keep=0
while (($#)); do
  case "$1" in
    --for) run_for="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    *) die "unknown option $1 (usage: demo.sh [--for SECONDS] [--keep])" ;;
  esac
done

cleanup() {
  ((keep)) || "$here/kafka.sh" stop
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$here/setup.sh"
cmake -S "$VIGIL_ROOT" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)" --target vigil
"$here/kafka.sh" start
"$build/pipeline/vigil" --version
"$build/pipeline/vigil" doctor --kafka localhost:9092
if [[ -n "$run_for" ]]; then
  sleep "$run_for"
else
  log "broker running on localhost:9092; Ctrl-C stops everything"
  while true; do sleep 3600; done
fi
