#!/usr/bin/env bash
# Wake-ups of an idle router: starts build/bin/switchyard on CONFIG, waits until it
# is ready, then counts the context switches of all its threads over SECONDS
# (voluntary ones are wake-ups from sleep: timers, async sends, I/O).
#
#   bench/idle_wakeups.sh [CONFIG] [SECONDS]     (defaults: configs/default.yaml 30)
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-configs/default.yaml}
secs=${2:-30}
bin=build/bin/switchyard
log=$(mktemp)
"$bin" --config "$config" >"$log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do
  grep -q "Everything is ready" "$log" && break
  sleep 0.1
done
grep -q "Everything is ready" "$log" || { echo "router did not get ready:"; cat "$log"; exit 1; }
sleep 1
sum() { cat /proc/$pid/task/*/status | awk -v k="$1" '$1 == k ":" {s += $2} END {print s}'; }
v0=$(sum voluntary_ctxt_switches)
n0=$(sum nonvoluntary_ctxt_switches)
sleep "$secs"
v1=$(sum voluntary_ctxt_switches)
n1=$(sum nonvoluntary_ctxt_switches)
threads=$(ls /proc/$pid/task | wc -l)
echo "config=$config threads=$threads seconds=$secs voluntary=$((v1 - v0)) nonvoluntary=$((n1 - n0))" \
  "per_second=$(awk -v v=$((v1 - v0)) -v s="$secs" 'BEGIN {printf "%.2f", v / s}')"
