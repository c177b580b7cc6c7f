#!/usr/bin/env bash
# Measures what a scale-out costs: catch-up throughput of one instance, then the state restore
# and hand-over when a second instance joins (deploy/README.md, "Scaling" and "Capacity
# planning"). Not a CTest test (it takes minutes and its numbers depend on the machine).
#
#   VIGIL_TEST_KAFKA=localhost:17092 VIGIL_BINARY=build/pipeline/vigil \
#   VIGIL_PROBE=build/deploy/vigil_kafka_probe VIGIL_TEST_WORK=/tmp/vigil-measure \
#     deploy/tests/measure_rebalance.sh [patients] [seconds]
#
# Against a running broker with the v1 topics (e.g. deploy/local/kafka.sh start). Uses its own
# group, so it does not disturb another group - but it writes snapshots to vigil.state.v1 and
# outputs to the output topics: never point it at production.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
: "${VIGIL_TEST_KAFKA:?set VIGIL_TEST_KAFKA to the broker}"
patients="${1:-200}"
seconds="${2:-60}"
base_port="${VIGIL_TEST_METRICS_PORT:-17191}"
work="$VIGIL_TEST_WORK/measure"
rm -rf "$work"
mkdir -p "$work"
run_id="measure-$$-$RANDOM"
export VIGIL_KAFKA_BOOTSTRAP_SERVERS="$VIGIL_TEST_KAFKA" VIGIL_KAFKA_GROUP_ID="vigil-$run_id"
export VIGIL_KAFKA_AUTO_OFFSET_RESET=latest VIGIL_METRICS_BIND_ADDRESS=127.0.0.1
export VIGIL_LIMITS_THREADS="${VIGIL_LIMITS_THREADS:-2}" VIGIL_LIMITS_LANES="${VIGIL_LIMITS_LANES:-2}"

metric() {  # metric <port> <series as exposed>
  curl -fsS --max-time 2 "http://127.0.0.1:$1/metrics" | awk -v key="$2" '$1 == key {v = $2} END {print v + 0}'
}
start_instance() {  # start_instance <n>: metrics on base + 2n, health + 1
  local n="$1"
  VIGIL_KAFKA_INSTANCE_ID="vigil-$run_id-$n" VIGIL_METRICS_PORT=$((base_port + 2 * n)) \
    VIGIL_METRICS_HEALTH_PORT=$((base_port + 2 * n + 1)) \
    "$VIGIL_BINARY" run --config "$tests_dir/../local/vigil.yaml" >"$work/vigil-$n.log" 2>&1 &
  pids[$n]=$!
  started "${pids[$n]}"
  wait_for 90 "instance $n ready" http_ok "http://127.0.0.1:$((base_port + 2 * n + 1))/readyz"
}

start_instance 0
records=$((patients * seconds))
log "producing $records envelopes ($patients patients x $seconds s)"
t0=$(date +%s.%N)  # from the start of producing: the instance processes while they arrive
"$VIGIL_PROBE" produce --patients "$patients" --seconds "$seconds" >/dev/null
until (($(metric "$base_port" 'vigil_events_total{event="records_processed"}' | cut -d. -f1) >= records)); do
  sleep 0.5
done
t1=$(date +%s.%N)
samples=$(metric "$base_port" 'vigil_events_total{event="samples_in"}')
python3 -c "
d = $t1 - $t0
print(f'catch-up: {$records} records, {$samples:.0f} samples in {d:.1f} s on ${VIGIL_LIMITS_THREADS} threads: {$records / d:.0f} records/s, {$samples / d / 1e6:.2f} M samples/s')"
sleep 11  # past limits.snapshot_interval_ms: snapshots of every patient are in the state topic
t2=$(date +%s.%N)
start_instance 1
# Cooperative rebalance: instance 0 gives up half, a follow-up rebalance hands it to instance 1.
until (($(metric $((base_port + 2)) 'vigil_state{kind="assigned_partitions"}') > 0)); do
  python3 -c "import sys; sys.exit(0 if $(date +%s.%N) - $t2 < 120 else 1)" || fail "instance 1 got no partition within 120 s"
  sleep 0.2
done
python3 -c "print(f'hand-over: instance 1 started -> owns partitions after {$(date +%s.%N) - $t2:.1f} s')"
sleep 2
grep -h "restored\|assigned\|revoked" "$work"/vigil-*.log | cut -c1-200
for n in 0 1; do
  port=$((base_port + 2 * n))
  echo "instance $n: partitions $(metric $port 'vigil_state{kind="assigned_partitions"}'), patients $(metric $port 'vigil_state{kind="patients"}'), restores $(metric $port 'vigil_latency_seconds_count{kind="state_restore"}'), restore seconds total $(metric $port 'vigil_latency_seconds_sum{kind="state_restore"}')"
done
for n in 1 0; do
  stop_and_time "${pids[$n]}" 15
  echo "instance $n stopped in $stop_secs s (exit $stop_code)"
done
