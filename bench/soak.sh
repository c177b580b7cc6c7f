#!/usr/bin/env bash
# Soak (issue 16, item 6): is the service's memory flat under a steady real-time load?
#
# PATIENTS simulated patients (default 1000) stream in real time (`vigil simulate --speed 1`:
# 250 Hz ECG, NIV flow and pressure, CO2, oximetry, device events) for SOAK_SECONDS (default
# 3600) into a broker of the script's own. `vigil run` with every operator and default limits
# analyses them; its resident memory (VmRSS), CPU time, records processed, dead letters, alerts
# and end-to-end latency are sampled every SAMPLE_SECONDS (default 30) into
# build/bench-work/soak.csv. At the end the service gets SIGTERM and must exit 0.
#
# The verdict looks at the second half of the run: once every patient has its state, RSS should
# stop growing. RSS moves by several per cent from sample to sample (allocator, batches in
# flight), so single samples prove nothing: it prints the medians of the second and fourth
# quarters and the least-squares slope over the second half, and calls the run flat when that
# slope would add less than 2 % of the second half's mean RSS per hour.
#
# Usage: bench/soak.sh                       (an hour; about 5 % of one core at 1000 patients)
#        PATIENTS=200 SOAK_SECONDS=300 bench/soak.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
build="${VIGIL_BUILD_DIR:-$root/build}"
port="${VIGIL_SOAK_KAFKA_PORT:-59192}"
patients="${PATIENTS:-1000}"
soak_seconds="${SOAK_SECONDS:-3600}"
sample_seconds="${SAMPLE_SECONDS:-30}"
bootstrap="localhost:$port"
metrics_port=$((port + 300))
work="$build/bench-work/soak"
mkdir -p "$work"
export VIGIL_KAFKA_PORT="$port" VIGIL_KAFKA_DATA="$build/soak-kafka"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
[[ -x "$build/pipeline/vigil" && -x "$build/bench/service_throughput_bench" ]] ||
  { log "build first: ninja -C $build vigil service_throughput_bench"; exit 1; }
# Copies, so that a rebuild during the hour does not change what is measured.
cp "$build/pipeline/vigil" "$work/vigil"
cp "$build/bench/service_throughput_bench" "$work/driver"

service_pid="" simulator_pid=""
cleanup() {
  [[ -n "$simulator_pid" ]] && kill "$simulator_pid" 2>/dev/null || true
  [[ -n "$service_pid" ]] && kill -TERM "$service_pid" 2>/dev/null && wait "$service_pid" 2>/dev/null || true
  "$root/deploy/local/kafka.sh" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

"$root/deploy/local/kafka.sh" reset >/dev/null 2>&1 || true
"$root/deploy/local/kafka.sh" start
"$work/driver" topics --bootstrap "$bootstrap" --prefix soak --partitions 12 >/dev/null

cat >"$work/vigil.yaml" <<YAML
kafka:
  bootstrap_servers: $bootstrap
  group_id: soak
  instance_id: soak-0
  auto_offset_reset: earliest
topics:
  telemetry: soak.telemetry
  alerts: soak.alerts
  aggregates: soak.aggregates
  dead_letter: soak.dlq
  state: soak.state
  patient_config: soak.patient-config
metrics:
  bind_address: 127.0.0.1
  port: $metrics_port
  health_port: $((metrics_port + 1))
logging:
  level: warn
YAML
"$work/vigil" run --config "$work/vigil.yaml" 2>"$work/vigil.log" &
service_pid=$!
sleep 5  # joined and assigned before the load starts
rss_idle=$(awk '/^VmRSS:/ { print $2 }' "/proc/$service_pid/status")
"$work/vigil" simulate --kafka "$bootstrap" --topic soak.telemetry --patients "$patients" \
  --speed 1 --start now --duration "$soak_seconds" >"$work/simulate.log" 2>&1 &
simulator_pid=$!
log "soak: $patients patients in real time for $soak_seconds s, sampling every $sample_seconds s"

metric() {  # sum of the samples of a metric whose line starts with $1
  curl -s "http://127.0.0.1:$metrics_port/metrics" |
    awk -v p="$1" 'index($0, p) == 1 { s += $NF } END { printf "%.0f", s }'
}
ticks_per_s=$(getconf CLK_TCK)
csv="$work/soak.csv"
echo "elapsed_s,rss_kb,cpu_s,records_processed,dead_letters,alerts,patients,health" >"$csv"
t0=$SECONDS
while kill -0 "$simulator_pid" 2>/dev/null && ((SECONDS - t0 < soak_seconds + 60)); do
  sleep "$sample_seconds"
  kill -0 "$service_pid" 2>/dev/null || { log "the service exited during the soak"; exit 1; }
  rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$service_pid/status")
  cpu=$(awk -v hz="$ticks_per_s" '{ printf "%.1f", ($14 + $15) / hz }' "/proc/$service_pid/stat")
  health=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$((metrics_port + 1))/healthz" || true)
  echo "$((SECONDS - t0)),$rss,$cpu,$(metric 'vigil_events_total{event="records_processed"'),$(metric vigil_dead_letters_total),$(metric vigil_alerts_total),$(metric 'vigil_state{kind="patients"}'),$health" >>"$csv"
done
wait "$simulator_pid" || { log "the simulator failed: $(tail -3 "$work/simulate.log")"; exit 1; }
simulator_pid=""
sleep 5
latency="$("$work/driver" latency --metrics-port "$metrics_port" || true)"
t_stop=$SECONDS
kill -TERM "$service_pid"
status=0
wait "$service_pid" || status=$?
service_pid=""
log "service stopped in $((SECONDS - t_stop)) s, exit $status"

awk -F, -v status="$status" -v latency="$latency" -v patients="$patients" -v idle="$rss_idle" '
  NR == 1 { next }
  { n++; t[n] = $1; rss[n] = $2; cpu[n] = $3; rec[n] = $4; dl[n] = $5; al[n] = $6; pat[n] = $7
    if ($2 > max) max = $2; if ($8 != 200) unhealthy++ }
  END {
    if (n < 4) { print "soak: too few samples (" n ")"; exit 1 }
    h = int((n + 1) / 2)
    for (i = h; i <= n; i++) { sx += t[i]; sy += rss[i]; sxx += t[i] * t[i]; sxy += t[i] * rss[i]; m++ }
    slope = (m * sxy - sx * sy) / (m * sxx - sx * sx)   # KB per second
    per_hour = 100 * slope * 3600 / (sy / m)             # % of the mean RSS per hour
    q2 = median(rss, int(n / 4) + 1, h); q4 = median(rss, int(3 * n / 4) + 1, n)
    printf "soak: %d patients, %d s, %d samples\n", patients, t[n], n
    printf "  RSS: before the load %.1f MB, first sample %.1f MB, max %.1f MB; median of the 2nd quarter %.1f MB, of the 4th %.1f MB\n",
           idle / 1024, rss[1] / 1024, max / 1024, q2 / 1024, q4 / 1024
    printf "  RSS above the idle service, per patient (4th-quarter median): %.1f KB\n", (q4 - idle) / patients
    printf "  second half: slope %.2f MB/h (%.2f %% of its mean RSS per hour) -> %s\n", slope * 3600 / 1024,
           per_hour, (per_hour < 2 ? "flat" : "GROWING")
    printf "  records processed %d (%.0f/s), CPU %.1f s (%.1f %% of one core), dead letters %d, alerts %d, patients %d\n",
           rec[n], rec[n] / t[n], cpu[n], 100 * cpu[n] / t[n], dl[n], al[n], pat[n]
    printf "  /healthz not 200 in %d samples; end-to-end latency: %s; SIGTERM exit %d\n",
           unhealthy, latency, status
    exit (status != 0 || per_hour >= 2)
  }
  function median(a, from, to,    k, j, v, c, tmp) {
    c = 0
    for (k = from; k <= to; k++) tmp[++c] = a[k]
    for (k = 2; k <= c; k++) { v = tmp[k]; for (j = k - 1; j >= 1 && tmp[j] > v; j--) tmp[j + 1] = tmp[j]; tmp[j + 1] = v }
    return c % 2 ? tmp[(c + 1) / 2] : (tmp[c / 2] + tmp[c / 2 + 1]) / 2
  }' "$csv"
