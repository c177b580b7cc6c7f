#!/usr/bin/env bash
# The README's first command, run as a test: `demo.sh --for N` must start everything, feed the
# cohort, stop by itself with exit 0, leave nothing running, and list every injected event of
# the simulator's truth in its summary as detected, missed, silent or not alarmed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
"$root/deploy/local/demo.sh" --for "${1:-45}" --speed 8 --patients 6 >"$out" 2>&1 || {
  tail -40 "$out"
  echo "FAIL: demo.sh exited non-zero"
  exit 1
}
truth="$root/deploy/local/.run/demo/truth.jsonl"
[[ -s "$truth" ]] || { tail -40 "$out"; echo "FAIL: no truth written"; exit 1; }
grep -q "service ready" "$out" || { tail -40 "$out"; echo "FAIL: the service never became ready"; exit 1; }
injected=$(grep -c . "$truth")
listed=$(grep -cE '^  [a-z0-9-]+ +[A-Z_]+ +[0-9]+ s  .*(detected|MISSED|silent \(ok\)|not alarmed)' "$out" || true)
echo "injected $injected events, summary lists $listed"
if [[ "$injected" -ne "$listed" ]]; then
  sed -n '/Injected events/,$p' "$out" | head -60
  echo "FAIL: every injected event must be listed in the summary"
  exit 1
fi
# The reports the summary points to come from Kafka (what the service committed).
report="$root/reports/sim-00000.html"
[[ -s "$report" ]] || { tail -40 "$out"; echo "FAIL: no report for sim-00000"; exit 1; }
grep -q "as published on vigil.alerts.v1" "$report" ||
  { echo "FAIL: the demo's report was not built from the Kafka topics"; exit 1; }
grep -q '<svg class="panel"' "$report" || { echo "FAIL: the demo's report has no plots"; exit 1; }
if pgrep -f "vigil (run|simulate|watch|replay) .*localhost:9092" >/dev/null ||
   (exec 3<>/dev/tcp/127.0.0.1/9092) 2>/dev/null; then
  echo "FAIL: the demo left something running"
  exit 1
fi
echo "demo ok"
