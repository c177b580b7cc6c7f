#!/usr/bin/env bash
# Integration tests against the SASL_SSL broker (CTest fixture `kafka_secure`, started by
# `deploy/local/kafka.sh start --secure`): TLS + SCRAM-SHA-512 + ACLs, configured the way a
# deployment configures Vigil (VIGIL_* environment, password from a file).
#
#   kafka_secure_test.sh vigil-works        correct credentials: vigil run consumes, commits,
#                                           and never prints the password
#   kafka_secure_test.sh wrong-password     vigil run fails at start with a clear message
#   kafka_secure_test.sh reader-refused     the `reader` principal writes nothing: its
#                                           transaction (probe) and vigil run under it are
#                                           refused and leave nothing read_committed can see
#   kafka_secure_test.sh least-privilege    `reader` reads alerts and aggregates but not state,
#                                           dead letters or telemetry; `vigil` cannot write
#                                           telemetry or read alerts
#   kafka_secure_test.sh wrong-ca           vigil run trusting another CA never connects,
#                                           commits nothing and says why
#
# Environment (CMake sets it): VIGIL_BINARY, VIGIL_PROBE, VIGIL_TEST_WORK, VIGIL_KAFKA_PORT and
# VIGIL_KAFKA_DATA of the secure broker.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
case_name="${1:?usage: $0 vigil-works|wrong-password|reader-refused|least-privilege|wrong-ca}"
work="$VIGIL_TEST_WORK/kafka-secure-$case_name"
rm -rf "$work"
mkdir -p "$work"
run_id="$case_name-$$-$RANDOM"
data_dir="${VIGIL_KAFKA_DATA:?set VIGIL_KAFKA_DATA to the data of the secure broker}"
metrics_port="${VIGIL_TEST_METRICS_PORT:-17191}"
health_port=$((metrics_port + 1))

# as_user <user>: the client settings of `kafka.sh client-env <user>` into this shell.
as_user() {
  local line
  while IFS= read -r line; do export "${line?}"; done < <("$tests_dir/../local/kafka.sh" client-env "$1")
}
# count <topic>: committed records in a topic, read through the broker's local admin listener
# (PLAINTEXT, a super user: no principal of the deployment may read every topic).
count() {
  (unset "${!VIGIL_KAFKA_PROPERTIES__@}"
   VIGIL_KAFKA_BOOTSTRAP_SERVERS="localhost:$VIGIL_KAFKA_PORT" VIGIL_KAFKA_GROUP_ID="admin-count-$run_id" \
     "$VIGIL_PROBE" count --topic "$1" --idle-ms 2000)
}
# count_as <user> <topic>: the same read as <user>; its exit code says whether it was allowed.
count_as() {
  (as_user "$1"; VIGIL_KAFKA_GROUP_ID="$1-count-$run_id" "$VIGIL_PROBE" count --topic "$2" --idle-ms 2000)
}
# produce_as <user> <probe produce arguments...>: device telemetry written as <user>.
produce_as() {
  local user="$1"
  shift
  (as_user "$user"; VIGIL_KAFKA_GROUP_ID="$user-$run_id" "$VIGIL_PROBE" produce "$@")
}
start_vigil() {
  export VIGIL_METRICS_BIND_ADDRESS=127.0.0.1 VIGIL_METRICS_PORT="$metrics_port"
  export VIGIL_METRICS_HEALTH_PORT="$health_port" VIGIL_LIMITS_THREADS=2 VIGIL_LIMITS_LANES=2
  service_log="$work/vigil.log"
  "$VIGIL_BINARY" run --config "$tests_dir/../local/vigil.yaml" >"$work/vigil.log" 2>&1 &
  vigil_pid=$!
  started "$vigil_pid"
}
# metric_at_least <series as exposed> <n>: vigil run's own /metrics shows the series >= n.
metric_at_least() {
  curl -fsS --max-time 2 "http://127.0.0.1:$metrics_port/metrics" |
    awk -v key="$1" -v n="$2" '$1 == key {v = $2} END {exit !(v >= n)}'
}
# wait_exit <seconds>: waits for vigil run to exit by itself; sets exit_code.
wait_exit() {
  local deadline=$((SECONDS + $1))
  while kill -0 "$vigil_pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  kill -0 "$vigil_pid" 2>/dev/null && fail "vigil run still running after $1 s"
  exit_code=0
  wait "$vigil_pid" || exit_code=$?
}

case "$case_name" in
  vigil-works)
    as_user vigil
    export VIGIL_KAFKA_GROUP_ID="vigil-$run_id" VIGIL_KAFKA_INSTANCE_ID="vigil-$run_id-0"
    export VIGIL_KAFKA_STATISTICS_INTERVAL_MS=1000
    password="$(cat "$data_dir/secrets/vigil.password")"
    # The configuration dump redacts the password it read from the file.
    "$VIGIL_BINARY" run --config "$tests_dir/../local/vigil.yaml" --print-config >"$work/print-config.txt"
    grep -q "sasl.password .*<redacted>" "$work/print-config.txt" || fail "--print-config does not show sasl.password as <redacted>"
    dead_before="$(count vigil.dlq.v1)"
    start_vigil
    wait_for 90 "vigil run ready over SASL_SSL" http_ok "http://127.0.0.1:$health_port/readyz"
    pass "vigil run authenticated over SASL_SSL (SCRAM-SHA-512) and became ready"
    produce_as gateway --patients 5 --seconds 10 --garbage 3 || fail "produce as gateway failed"
    wait_for 60 "53 records consumed (5 patients x 10 s + 3 garbage)" metric_at_least 'vigil_events_total{event="records_in"}' 53
    wait_for 30 "a transaction committed" metric_at_least 'vigil_events_total{event="transactions_committed"}' 1
    pass "records consumed and committed through the ACLs of User:vigil"
    stop_and_time "$vigil_pid" 15
    [[ "$stop_code" == 0 ]] || { fail "vigil run exit $stop_code on SIGTERM"; }
    dead="$(count vigil.dlq.v1)"
    ((dead >= dead_before + 3)) || fail "expected 3 more committed dead letters than $dead_before, read_committed sees $dead"
    if grep -qF "$password" "$work/vigil.log" "$work/print-config.txt"; then
      fail "the SASL password appears in vigil run's output"
    fi
    pass "the password is in no log line; $((dead - dead_before)) new dead letters committed; stopped in $stop_secs s"
    ;;

  wrong-password)
    as_user vigil
    echo "not-the-password" >"$work/wrong.password"
    export VIGIL_KAFKA_PROPERTIES__SASL__PASSWORD_FILE="$work/wrong.password"
    export VIGIL_KAFKA_GROUP_ID="vigil-$run_id" VIGIL_KAFKA_INSTANCE_ID="vigil-$run_id-0"
    start_vigil
    wait_exit 60
    ((exit_code != 0)) || fail "vigil run exited 0 with a wrong password"
    grep -q 'level=critical.*Kafka authentication failed' "$work/vigil.log" ||
      { cat "$work/vigil.log"; fail "no critical 'Kafka authentication failed' line"; }
    grep -qF "not-the-password" "$work/vigil.log" && fail "the (wrong) password was logged"
    pass "wrong password: vigil run exited $exit_code: $(grep 'Kafka authentication failed' "$work/vigil.log" | tail -1 | cut -c1-200)"
    ;;

  reader-refused)
    alerts_before="$(count vigil.alerts.v1)"
    telemetry_before="$(count vigil.telemetry.v1)"
    as_user reader
    # A transaction of telemetry and one alert: reader may write neither (nor hold a
    # transactional id), so it is refused and nothing of it becomes visible.
    if VIGIL_KAFKA_GROUP_ID="reader-$run_id" "$VIGIL_PROBE" produce --patients 3 --seconds 3 \
      --transactional-id "reader-$run_id" --also-topic vigil.alerts.v1 >"$work/probe.log" 2>&1; then
      cat "$work/probe.log"
      fail "User:reader committed a transaction that writes vigil.alerts.v1"
    fi
    grep -qi "authoriz" "$work/probe.log" || { cat "$work/probe.log"; fail "no authorization error reported"; }
    pass "User:reader refused: $(grep -i authoriz "$work/probe.log" | head -1)"
    alerts_after="$(count vigil.alerts.v1)"
    telemetry_after="$(count vigil.telemetry.v1)"
    [[ "$alerts_after" == "$alerts_before" ]] || fail "alerts: $alerts_before committed before, $alerts_after after"
    [[ "$telemetry_after" == "$telemetry_before" ]] ||
      fail "telemetry: $telemetry_before committed before, $telemetry_after after: half of the transaction is visible"
    pass "nothing half-written: read_committed sees $telemetry_after telemetry and $alerts_after alert records, as before"
    # vigil run as reader: reader may not even read the telemetry, so it stops at start with
    # an authorization error. Nothing may become visible, and the log must say why.
    # Telemetry to analyse (written as vigil), so that it has outputs to publish.
    produce_as gateway --patients 3 --seconds 5 >/dev/null || fail "producing telemetry as gateway failed"
    aggregates_before="$(count vigil.aggregates.v1)"
    state_before="$(count vigil.state.v1)"
    export VIGIL_KAFKA_GROUP_ID="reader-$run_id" VIGIL_KAFKA_INSTANCE_ID="reader-$run_id-0"
    export VIGIL_KAFKA_AUTO_OFFSET_RESET=earliest
    start_vigil
    wait_exit 120
    ((exit_code != 0)) || fail "vigil run as User:reader exited 0"
    grep -qi "authorization failed" "$work/vigil.log" ||
      fail "vigil run as reader: no authorization message in its log"
    for topic in alerts aggregates state; do
      before_var="${topic}_before"
      [[ -n "${!before_var:-}" ]] || continue
      after="$(count "vigil.$topic.v1")"
      [[ "$after" == "${!before_var}" ]] || fail "vigil.$topic.v1: ${!before_var} committed before, $after after vigil run as reader"
    done
    pass "vigil run as User:reader exited $exit_code after its transactions were refused ($(grep -ci "authorization failed" "$work/vigil.log") authorization errors logged, e.g. $(grep -i "authorization failed" "$work/vigil.log" | head -1 | grep -o 'Failed to add.*' | cut -c1-100)); nothing committed"
    ;;
  least-privilege)
    # reader: the dashboards' principal.
    count_as reader vigil.alerts.v1 >"$work/reader-alerts.log" 2>&1 ||
      { cat "$work/reader-alerts.log"; fail "User:reader cannot read vigil.alerts.v1"; }
    count_as reader vigil.aggregates.v1 >"$work/reader-aggregates.log" 2>&1 ||
      { cat "$work/reader-aggregates.log"; fail "User:reader cannot read vigil.aggregates.v1"; }
    pass "User:reader reads alerts and aggregates"
    for topic in vigil.state.v1 vigil.dlq.v1 vigil.telemetry.v1; do
      if count_as reader "$topic" >"$work/reader-$topic.log" 2>&1; then
        cat "$work/reader-$topic.log"
        fail "User:reader read $topic, which holds raw telemetry"
      fi
      grep -qi "authoriz" "$work/reader-$topic.log" ||
        { cat "$work/reader-$topic.log"; fail "reading $topic as reader failed, but not for authorization"; }
    done
    pass "User:reader refused on state, dead letters and telemetry: $(grep -hi authoriz "$work/reader-vigil.state.v1.log" | head -1 | cut -c1-160)"
    # vigil: the service's principal writes its outputs, never telemetry, and reads no output.
    if produce_as vigil --patients 1 --seconds 1 >"$work/vigil-produce.log" 2>&1; then
      fail "User:vigil wrote vigil.telemetry.v1"
    fi
    grep -qi "authoriz" "$work/vigil-produce.log" || { cat "$work/vigil-produce.log"; fail "no authorization error"; }
    if count_as vigil vigil.alerts.v1 >"$work/vigil-alerts.log" 2>&1; then
      fail "User:vigil read vigil.alerts.v1"
    fi
    grep -qi "authoriz" "$work/vigil-alerts.log" || { cat "$work/vigil-alerts.log"; fail "no authorization error"; }
    pass "User:vigil refused writing telemetry and reading alerts"
    ;;

  wrong-ca)
    as_user vigil
    openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=some-other-ca" \
      -keyout "$work/other-ca.key" -out "$work/other-ca.crt" 2>/dev/null
    export VIGIL_KAFKA_PROPERTIES__SSL__CA__LOCATION="$work/other-ca.crt"
    export VIGIL_KAFKA_GROUP_ID="vigil-$run_id" VIGIL_KAFKA_INSTANCE_ID="vigil-$run_id-0"
    state_before="$(count vigil.state.v1)"
    start_vigil
    wait_exit 90
    ((exit_code != 0)) || fail "vigil run exited 0 trusting the wrong CA"
    grep -qi "certificate verify failed\|SSL handshake failed" "$work/vigil.log" ||
      { tail -20 "$work/vigil.log"; fail "no TLS verification failure in the log"; }
    [[ "$(count vigil.state.v1)" == "$state_before" ]] || fail "something was committed"
    pass "wrong CA: vigil run exited $exit_code: $(grep -i 'certificate verify failed\|SSL handshake failed' "$work/vigil.log" | head -1 | cut -c1-200)"
    ;;
  *) fail "unknown case $case_name" ;;
esac
