# Helpers of the deployment integration tests. Sourced, not run.
# Every process a test starts is registered with `started` and stopped on exit, whatever happens.
set -euo pipefail
tests_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$tests_dir/../local/common.sh"

: "${VIGIL_BINARY:?set VIGIL_BINARY to the built vigil executable}"
: "${VIGIL_PROBE:?set VIGIL_PROBE to the built vigil_kafka_probe}"
: "${VIGIL_TEST_WORK:?set VIGIL_TEST_WORK to a scratch directory}"

_started=()
started() { _started+=("$1"); }
_stop_all() {
  local pid
  for pid in "${_started[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${_started[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  done
}
trap _stop_all EXIT

# fail <message>: ends the test; shows the tail of $service_log (when a test set it) first.
service_log=""
fail() {
  if [[ -n "$service_log" && -f "$service_log" ]]; then
    log "last lines of $service_log:"
    tail -15 "$service_log" | cut -c1-300 >&2
  fi
  log "FAIL: $*"
  exit 1
}
pass() { log "ok: $*"; }

# wait_for <seconds> <description> <command...>: polls the command until it succeeds.
wait_for() {
  local seconds="$1" what="$2"
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "$what: not within $seconds s"
    sleep 0.5
  done
}

http_ok() { curl -fsS -o /dev/null --max-time 2 "$1"; }

# prom_value <prometheus base url> <PromQL>: the first sample's value of an instant query
# (empty when the result is empty); fails on a query error.
prom_value() {
  curl -fsS --max-time 5 --get --data-urlencode "query=$2" "$1/api/v1/query" |
    python3 -c '
import json, sys
r = json.load(sys.stdin)
if r.get("status") != "success":
    sys.exit("query failed: %s" % r)
res = r["data"]["result"]
if r["data"]["resultType"] == "scalar":
    print(res[1])
elif res:
    print(res[0]["value"][1])
'
}

# prom_above <url> <PromQL> <threshold>: true when the query has a value > threshold.
prom_above() {
  local v
  v="$(prom_value "$1" "$2")" || return 1
  [[ -n "$v" ]] && python3 -c "import sys; sys.exit(0 if float('$v') > float('$3') else 1)"
}

# stop_and_time <pid> <max seconds>: SIGTERM, wait for the exit (in this shell: the pid must be
# its child); sets stop_code (the exit status, or "timeout") and stop_secs.
stop_and_time() {
  local pid="$1" max="$2" t0
  t0=$(date +%s.%N)
  kill -TERM "$pid"
  local deadline=$((SECONDS + max))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  stop_secs="$(python3 -c "print(round($(date +%s.%N) - $t0, 2))")"
  if kill -0 "$pid" 2>/dev/null; then
    stop_code=timeout
    return
  fi
  stop_code=0
  wait "$pid" || stop_code=$?
}
