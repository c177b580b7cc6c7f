#!/usr/bin/env bash
# Integration test (CTest deploy_prometheus_scrape, label integration): a real Prometheus server
# scrapes a real `vigil run` attached to the test broker (CTest fixture `kafka`), loads
# deploy/prometheus/vigil-rules.yaml, and the metrics must arrive and move under load, read back
# through Prometheus's HTTP API (/api/v1/query). Also measures the SIGTERM shutdown time.
#
# Environment (CMake sets it): VIGIL_BINARY, VIGIL_PROBE, VIGIL_TEST_WORK, VIGIL_TEST_KAFKA
# (bootstrap of the fixture broker), VIGIL_TEST_PROMETHEUS_PORT (default 17190),
# VIGIL_TEST_METRICS_PORT (default 17191; health on the port + 1).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
command -v prometheus >/dev/null || fail "prometheus not found: Debian package 'prometheus' (deploy/local/setup.sh)"
: "${VIGIL_TEST_KAFKA:?set VIGIL_TEST_KAFKA to the test broker}"
prom_port="${VIGIL_TEST_PROMETHEUS_PORT:-17190}"
metrics_port="${VIGIL_TEST_METRICS_PORT:-17191}"
health_port=$((metrics_port + 1))
prom="http://127.0.0.1:$prom_port"
work="$VIGIL_TEST_WORK/prometheus-scrape"
rm -rf "$work"
mkdir -p "$work"
run_id="promtest-$$-$RANDOM"

# --- vigil run, configured as deployed: the example YAML plus environment overrides ------------
export VIGIL_KAFKA_BOOTSTRAP_SERVERS="$VIGIL_TEST_KAFKA"
export VIGIL_KAFKA_GROUP_ID="vigil-$run_id"
export VIGIL_KAFKA_INSTANCE_ID="vigil-$run_id-0"
export VIGIL_KAFKA_AUTO_OFFSET_RESET=latest
export VIGIL_KAFKA_STATISTICS_INTERVAL_MS=1000
export VIGIL_METRICS_BIND_ADDRESS=127.0.0.1
export VIGIL_METRICS_PORT="$metrics_port"
export VIGIL_METRICS_HEALTH_PORT="$health_port"
export VIGIL_LIMITS_THREADS=2
export VIGIL_LIMITS_LANES=2
# The fixture's topics must be visible in the broker's metadata before the service starts (it
# refuses to start without them, by design).
wait_for 30 "vigil.telemetry.v1 in the broker's metadata" "$VIGIL_PROBE" count --topic vigil.telemetry.v1 --idle-ms 100
service_log="$work/vigil.log"
"$VIGIL_BINARY" run --config "$tests_dir/../local/vigil.yaml" >"$work/vigil.log" 2>&1 &
vigil_pid=$!
started "$vigil_pid"
wait_for 60 "vigil run ready (/readyz on $health_port)" http_ok "http://127.0.0.1:$health_port/readyz"
http_ok "http://127.0.0.1:$health_port/healthz" || fail "/healthz is not 200 while ready"
pass "vigil run is ready"

# --- Prometheus: 1 s scrapes, the project's rules ------------------------------------------------
cat >"$work/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $tests_dir/../prometheus/vigil-rules.yaml
scrape_configs:
  - job_name: vigil
    static_configs:
      - targets: ["127.0.0.1:$metrics_port"]
YAML
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" --log.level=warn >"$work/prometheus.log" 2>&1 &
started $!
wait_for 30 "Prometheus ready on $prom_port" http_ok "$prom/-/ready"
wait_for 30 "up{job=\"vigil\"} == 1" prom_above "$prom" 'up{job="vigil"}' 0
pass "Prometheus scrapes vigil run"

# The rules load in a real server (not only in promtool) and evaluate without errors.
rules="$(curl -fsS "$prom/api/v1/rules")"
python3 - "$rules" <<'PY' || fail "rules not loaded or unhealthy"
import json, sys
groups = json.loads(sys.argv[1])["data"]["groups"]
rules = [r for g in groups for r in g["rules"]]
names = {r["name"] for r in rules}
assert "VigilConsumerLagGrowing" in names and "VigilClinicalAlertStorm" in names, names
bad = [(r["name"], r.get("lastError")) for r in rules if r.get("health") not in ("ok", "unknown")]
assert not bad, bad
print(f"{len(rules)} rules loaded")
PY

# --- load: telemetry and some undecodable records ----------------------------------------------
before="$(prom_value "$prom" 'sum(vigil_events_total{job="vigil",event="records_in"})')"
[[ -n "$before" ]] || fail "vigil_events_total{event=\"records_in\"} not in Prometheus"
VIGIL_KAFKA_GROUP_ID="probe-$run_id" "$VIGIL_PROBE" produce --patients 20 --seconds 20 --garbage 15 ||
  fail "producing telemetry failed"
# 20 patients x 20 s + 15 garbage = 415 records
wait_for 60 "records_in grows by 415 in Prometheus" prom_above "$prom" \
  'sum(vigil_events_total{job="vigil",event="records_in"})' "$(python3 -c "print($before + 414)")"
pass "records_in moved from $before to $(prom_value "$prom" 'sum(vigil_events_total{job="vigil",event="records_in"})')"
wait_for 30 "records_processed > 0" prom_above "$prom" 'sum(vigil_events_total{event="records_processed"})' 0
wait_for 30 "dead letters by reason UNDECODABLE >= 15" prom_above "$prom" \
  'sum(vigil_dead_letters_total{reason="DEAD_LETTER_REASON_UNDECODABLE"})' 14
wait_for 30 "transactions committed" prom_above "$prom" 'sum(vigil_events_total{event="transactions_committed"})' 0
wait_for 30 "end-to-end latency observations" prom_above "$prom" 'sum(vigil_latency_seconds_count{kind="end_to_end"})' 0
wait_for 30 "a finite end-to-end p99 over 1m" prom_above "$prom" \
  'histogram_quantile(0.99, sum by (le) (rate(vigil_latency_seconds_bucket{kind="end_to_end"}[1m])))' 0
wait_for 30 "state restore observed" prom_above "$prom" 'sum(vigil_latency_seconds_count{kind="state_restore"})' 0
wait_for 30 "all 12 partitions assigned" prom_above "$prom" 'sum(vigil_state{kind="assigned_partitions"})' 11
wait_for 30 "per-operator time observed" prom_above "$prom" 'count(vigil_operator_seconds_count)' 0
wait_for 30 "the rules' recording series exist" prom_above "$prom" 'job:vigil_records_in:rate5m' 0
pass "metrics arrive and move: p99 end-to-end $(prom_value "$prom" 'histogram_quantile(0.99, sum by (le) (rate(vigil_latency_seconds_bucket{kind="end_to_end"}[1m])))') s"
# The restore-time rule compares with the le="30" bucket: the exposition must use that label value.
[[ -n "$(prom_value "$prom" 'vigil_latency_seconds_bucket{kind="state_restore",le="30"}')" ]] ||
  fail "no le=\"30\" bucket for state_restore: VigilStateRestoreSlow would never fire"

# Every query of the Grafana dashboard evaluates in Prometheus (names, labels and syntax), and the
# panels of the issue's list show data under this load.
python3 - "$prom" "$tests_dir/../grafana/vigil-dashboard.json" <<'PY' || fail "dashboard queries"
import json, sys, urllib.parse, urllib.request
prom, path = sys.argv[1], sys.argv[2]
dash = json.load(open(path))
def query(expr):
    expr = expr.replace("$__rate_interval", "1m").replace("$job", "vigil").replace("$instance", ".*")
    with urllib.request.urlopen(prom + "/api/v1/query?" + urllib.parse.urlencode({"query": expr}), timeout=10) as r:
        body = json.load(r)
    assert body["status"] == "success", (expr, body)
    return body["data"]["result"]
empty, total = [], 0
for panel in dash["panels"]:
    for target in panel.get("targets", []):
        total += 1
        if not query(target["expr"]):
            empty.append(panel["title"])
must_show = ["Records in / processed per second", "Consumer lag by instance", "End-to-end latency percentiles",
             "Dead letters by reason", "State restore time", "Per-operator CPU (seconds per second)", "Partitions assigned"]
missing = [t for t in must_show if t in empty]
print(f"{total} dashboard queries evaluate; empty under this load: {sorted(set(empty))}")
assert not missing, f"panels without data: {missing}"
PY

# --- shutdown within the budget (10 s; the manifests give 30 s) ---------------------------------
stop_and_time "$vigil_pid" 15
[[ "$stop_code" == 0 ]] || { fail "vigil run exited with $stop_code (after $stop_secs s) on SIGTERM"; }
python3 -c "import sys; sys.exit(0 if $stop_secs <= 10 else 1)" || fail "shutdown took $stop_secs s (> 10 s)"
pass "vigil run stopped on SIGTERM in $stop_secs s (exit 0)"
if grep -q "level=critical\|level=error" "$work/vigil.log"; then
  grep "level=critical\|level=error" "$work/vigil.log" | head -5
  fail "vigil run logged errors"
fi
