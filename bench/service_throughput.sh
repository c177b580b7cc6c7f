#!/usr/bin/env bash
# End-to-end throughput and latency of `vigil run` with the full operator set, against a real
# single-node broker of its own:
#   1. pre-fill a 12-partition telemetry topic with PATIENTS synthetic patients x SECONDS_EACH s
#      (1 envelope per patient per second: 250 Hz ECG + 25 Hz flow and pressure);
#   2. drain it with a bare librdkafka consumer (the ceiling), then with `vigil run` on 2 cores
#      and on 1 core (taskset + limits.threads), each as a fresh consumer group;
#   3. end-to-end latency (Kafka timestamp -> committed output) at a steady half of the 2-core rate.
# Usage: bench/service_throughput.sh            (PATIENTS=1000 SECONDS_EACH=600 by default)
# Environment: VIGIL_BUILD_DIR (build), VIGIL_BENCH_KAFKA_PORT (59092), LOAD_SECONDS (30),
#              TRANSACTION_MS (200), KEEP_BROKER=1 to leave the broker running.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
build="${VIGIL_BUILD_DIR:-$root/build}"
port="${VIGIL_BENCH_KAFKA_PORT:-59092}"
patients="${PATIENTS:-1000}"
seconds_each="${SECONDS_EACH:-600}"
load_seconds="${LOAD_SECONDS:-30}"
transaction_ms="${TRANSACTION_MS:-200}"
bootstrap="localhost:$port"
driver="$build/bench/service_throughput_bench"
vigil="$build/pipeline/vigil"
metrics_port=$((port + 300))
work="$build/bench-work"
mkdir -p "$work"
export VIGIL_KAFKA_PORT="$port" VIGIL_KAFKA_DATA="$build/bench-kafka"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
value() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }
service_pid=""
cleanup() {
  [[ -n "$service_pid" ]] && kill -TERM "$service_pid" 2>/dev/null && wait "$service_pid" 2>/dev/null || true
  [[ "${KEEP_BROKER:-0}" == 1 ]] || "$root/deploy/local/kafka.sh" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

[[ -x "$driver" && -x "$vigil" ]] || { log "build first: ninja -C $build vigil service_throughput_bench"; exit 1; }
"$root/deploy/local/kafka.sh" reset >/dev/null 2>&1 || true
"$root/deploy/local/kafka.sh" start
"$driver" topics --bootstrap "$bootstrap" --prefix bench --partitions 12 >/dev/null

log "filling bench.telemetry: $patients patients x $seconds_each s"
fill="$("$driver" fill --bootstrap "$bootstrap" --topic bench.telemetry --patients "$patients" --seconds "$seconds_each")"
log "$fill"
records="$(value "$fill" fill_records)"

bare="$("$driver" drain --bootstrap "$bootstrap" --topic bench.telemetry)"
log "$bare"

# run_service <cores> <group> <offset reset> <operators> <transaction ms>: starts vigil pinned
# to the first <cores> CPUs.
run_service() {
  local cores=$1 group=$2 reset=$3 operators=$4 txn_ms=$5
  cat >"$work/vigil-$group.yaml" <<YAML
kafka:
  bootstrap_servers: $bootstrap
  group_id: $group
  instance_id: $group-0
  auto_offset_reset: $reset
topics:
  telemetry: bench.telemetry
  alerts: bench.alerts
  aggregates: bench.aggregates
  dead_letter: bench.dlq
  state: bench.state
  patient_config: bench.patient-config
analysis:
  operators: $operators
limits:
  threads: $cores
  lanes: $((cores * 2))
  transaction_interval_ms: $txn_ms
  snapshot_interval_ms: 30000
metrics:
  bind_address: 127.0.0.1
  port: $metrics_port
  health_port: $((metrics_port + 1))
logging:
  level: warn
YAML
  taskset -c "0-$((cores - 1))" "$vigil" run --config "$work/vigil-$group.yaml" 2>"$work/vigil-$group.log" &
  service_pid=$!
}
# CPU seconds the service used so far (user + system), from /proc: on a shared machine the
# records per CPU second compare better than records per wall second.
cpu_seconds() {
  local ticks
  ticks=$(awk '{print $14 + $15}' "/proc/$service_pid/stat")
  awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }'
}
stop_service() {
  local t0=$SECONDS
  kill -TERM "$service_pid"
  wait "$service_pid" || true
  service_pid=""
  log "service stopped in $((SECONDS - t0)) s"
}

declare -A rate samples cpu
for run in 2:all 1:all 2:none; do
  cores=${run%%:*}
  operators=${run#*:}
  run_service "$cores" "bench-drain-$cores-$operators-$RANDOM" earliest "$operators" "${DRAIN_TRANSACTION_MS:-1000}"
  result="$("$driver" watch --metrics-port "$metrics_port" --records "$records")"
  cpu[$run]="$(cpu_seconds)"
  log "$cores core(s), operators $operators: $result cpu_s=${cpu[$run]}"
  rate[$run]="$(value "$result" service_records_per_s)"
  samples[$run]="$(value "$result" service_samples_per_s)"
  stop_service
done
half=$(( ${rate[2:all]} / 2 ))
log "latency at $half records/s for $load_seconds s (2 cores)"
run_service 2 "bench-latency-$RANDOM" latest all "$transaction_ms"
sleep 5  # joined and assigned before the load starts
"$driver" load --bootstrap "$bootstrap" --topic bench.telemetry --patients "$patients" --rate "$half" \
  --seconds "$load_seconds" --prefix "load$RANDOM" >/dev/null
sleep 2
latency="$("$driver" latency --metrics-port "$metrics_port")"
stop_service

bare_rate="$(value "$bare" bare_records_per_s)"
per_cpu() { awk -v r="$records" -v c="$1" 'BEGIN { printf "%.0f", r / c }'; }
cat <<REPORT
service_throughput: $patients patients x $seconds_each s = $records records ($(value "$fill" fill_samples) samples, $(value "$fill" fill_bytes) bytes); load average $(cut -d' ' -f1 /proc/loadavg)
  bare librdkafka consumer      : $bare_rate records/s, $(value "$bare" bare_records_per_cpu_s) records per CPU s
  vigil run, 2 cores, operators : ${rate[2:all]} records/s, ${samples[2:all]} samples/s ($(( 100 * ${rate[2:all]} / bare_rate )) % of bare), $(per_cpu "${cpu[2:all]}") records per CPU s
  vigil run, 1 core,  operators : ${rate[1:all]} records/s, ${samples[1:all]} samples/s ($(( 100 * ${rate[1:all]} / bare_rate )) % of bare), $(per_cpu "${cpu[1:all]}") records per CPU s
  vigil run, 2 cores, no operators (runtime only): ${rate[2:none]} records/s ($(( 100 * ${rate[2:none]} / bare_rate )) % of bare), $(per_cpu "${cpu[2:none]}") records per CPU s
  end-to-end latency at $half records/s (2 cores, transaction interval $transaction_ms ms): $latency
REPORT
