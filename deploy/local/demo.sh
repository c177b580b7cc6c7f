#!/usr/bin/env bash
# The demo (README's first command): Vigil doing its whole job on one machine.
#   1. installs what is missing and builds (deploy/local/setup.sh, CMake);
#   2. starts a fresh local Kafka broker (its own data folder, reset at each demo) and the
#      service (`vigil run --config deploy/local/vigil.yaml`);
#   3. feeds a cohort: simulated patients (`vigil simulate`, with ground truth) and, where
#      ../shared/data is present, real recordings replayed as patients (`vigil replay --kafka`);
#   4. shows live what a clinician sees (`vigil watch`: colour-coded alerts with explanations)
#      and, every 30 s, what an operator sees (throughput, lag, latency from /metrics);
#   5. on exit (Ctrl-C or --for): a per-patient summary with detection against the injected
#      truth (`vigil summary`), HTML reports, and everything it started is stopped.
#
# Options: --for <seconds>   stop by itself after that long (tests); default: until Ctrl-C
#          --patients <n>    simulated patients (default 8)
#          --speed <x>       device seconds per wall second (default 4)
#          --event-rate <x>  multiply the simulator's event rates (default 20: events within minutes)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/common.sh"
build="${VIGIL_BUILD_DIR:-$VIGIL_ROOT/build}"
run_dir="$here/.run/demo"
reports="$VIGIL_ROOT/reports"
shared="$VIGIL_ROOT/../shared/data"
run_for=""
patients=8
speed=4
event_rate=20
while (($#)); do
  case "$1" in
    --for) run_for="$2"; shift 2 ;;
    --patients) patients="$2"; shift 2 ;;
    --speed) speed="$2"; shift 2 ;;
    --event-rate) event_rate="$2"; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

export VIGIL_KAFKA_PORT=9092
export VIGIL_KAFKA_DATA="$here/.data/demo-kafka"
bootstrap="localhost:$VIGIL_KAFKA_PORT"
pids=()
service_pid=""

cleanup() {
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  if [[ -n "$service_pid" ]]; then
    kill -TERM "$service_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$service_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$service_pid" 2>/dev/null || true
  fi
  wait 2>/dev/null || true
  "$here/kafka.sh" stop || true
}

summarise() {
  trap - INT
  log "stopping the feeds; letting the service commit what it has"
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  pids=()
  sleep 5
  echo
  echo "==================================== summary ===================================="
  "$vigil" summary --kafka "$bootstrap" --truth "$run_dir/truth.jsonl" --until-idle 3 || true
  mkdir -p "$reports" && rm -f "$reports"/*.html
  # Reports of what the service committed to Kafka (published alerts and aggregates; ECG strips
  # from the patient's committed telemetry): a simulated patient and the replayed recordings.
  local report_patients=(sim-00000)
  [[ -f "$shared/mitdb/201.hea" ]] && report_patients+=(mitdb-201)
  [[ -f "$shared/vfdb/418.hea" ]] && report_patients+=(vfdb-418)
  for p in "${report_patients[@]}"; do
    "$vigil" report --patient "$p" --kafka "$bootstrap" --config "$here/vigil.yaml" \
      --out "$reports/$p.html" 2>>"$run_dir/report.log" || log "no report for $p (see ${run_dir#$VIGIL_ROOT/}/report.log)"
  done
  echo
  echo "Reports (open in a browser, no network needed): $(ls "$reports"/*.html 2>/dev/null | tr '\n' ' ')"
  echo "Service log: $run_dir/vigil.log   metrics: http://localhost:9464/metrics (while running)"
}

trap cleanup EXIT
trap 'summarise; exit 0' INT TERM

t0=$SECONDS
"$here/setup.sh"
cmake -S "$VIGIL_ROOT" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)" --target vigil
vigil="$build/pipeline/vigil"
rm -rf "$run_dir" && mkdir -p "$run_dir"

"$here/kafka.sh" reset >/dev/null 2>&1 || true
"$here/kafka.sh" start

log "starting the service: vigil run --config deploy/local/vigil.yaml"
VIGIL_KAFKA_BOOTSTRAP_SERVERS="$bootstrap" "$vigil" run --config "$here/vigil.yaml" \
  >"$run_dir/vigil.log" 2>&1 &
service_pid=$!
for _ in $(seq 1 300); do
  curl -fs "http://localhost:9465/readyz" >/dev/null 2>&1 && break
  kill -0 "$service_pid" 2>/dev/null || { tail -20 "$run_dir/vigil.log"; die "the service exited"; }
  sleep 0.2
done
log "service ready ($((SECONDS - t0)) s after the demo started)"

"$vigil" watch --kafka "$bootstrap" --from-beginning &
pids+=($!)

log "feeding $patients simulated patients at ${speed}x (events x$event_rate), truth in ${run_dir#$VIGIL_ROOT/}/truth.jsonl"
"$vigil" simulate --patients "$patients" --kafka "$bootstrap" --speed "$speed" \
  --event-rate "$event_rate" --truth "$run_dir/truth.jsonl" >"$run_dir/simulate.log" 2>&1 &
pids+=($!)
if [[ -d "$shared" ]]; then
  for rec in mitdb/201 mitdb/119 vfdb/418; do
    [[ -f "$shared/$rec.hea" ]] || continue
    patient="${rec/\//-}"
    log "replaying the real recording $rec as patient $patient"
    "$vigil" replay "$shared/$rec" --kafka "$bootstrap" --patient "$patient" --speed "$speed" \
      >"$run_dir/replay-$patient.log" 2>&1 &
    pids+=($!)
  done
else
  log "no ../shared/data: simulated patients only"
fi

log "live alerts below (HIGH red, MEDIUM yellow, LOW cyan); Ctrl-C for the summary"
deadline=$(( ${run_for:-999999999} + SECONDS ))
next_ops=$((SECONDS + 30))
while ((SECONDS < deadline)); do
  sleep 1
  kill -0 "$service_pid" 2>/dev/null || { tail -20 "$run_dir/vigil.log"; die "the service exited"; }
  if ((SECONDS >= next_ops)); then
    next_ops=$((SECONDS + 30))
    metrics="$(curl -fs http://localhost:9464/metrics 2>/dev/null || true)"
    in=$(awk '/^vigil_events_total\{event="records_in"\}/ {s+=$2} END {printf "%d", s}' <<<"$metrics")
    dlq=$(awk '/^vigil_dead_letters_total/ {s+=$2} END {printf "%d", s}' <<<"$metrics")
    lag=$(awk '/^vigil_state\{kind="consumer_lag_records"\}/ {s+=$2} END {printf "%d", s}' <<<"$metrics")
    log "operator view: records in $in, dead-lettered $dlq, consumer lag $lag (full metrics: :9464/metrics)"
  fi
done
summarise
