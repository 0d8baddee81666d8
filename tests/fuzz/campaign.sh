#!/usr/bin/env bash
# campaign.sh - the long fuzzing campaign: runs libFuzzer targets for a bounded
# number of executions (and at most a bounded time) each, a few at a time, at the
# lowest CPU priority, merges the inputs that found new coverage back into
# tests/fuzz/corpus/<name> (libFuzzer -merge=1, which keeps only inputs that add a
# feature), and prints one line per target: executions, coverage (cov: edges and
# ft: features from libFuzzer's last status line) and findings (crash, leak, timeout
# and out-of-memory artifacts, left in the work directory, never in the corpus).
#
# Usage: tests/fuzz/campaign.sh [options] [target ...]
#   -b DIR   the clang build with -DSY_BUILD_FUZZ=ON (default: build-fuzz)
#   -n RUNS  executions per target (default: 10000000)
#   -t SECS  time bound per target (default: 3600)
#   -j JOBS  targets run at once (default: 1)
#   -m MB    -rss_limit_mb (default: 2048)
#   -L BYTES -max_len, the largest input tried (default: 4096; seeds above it are
#            cut when loaded)
#   -w DIR   work directory: corpora, logs, artifacts (default: /tmp/sy-fuzz-campaign)
#   -M       do not merge new inputs back into tests/fuzz/corpus
#   -l FILE  also append the table to FILE
# Targets are names (otlp_proto) or fuzz_<name>; default: every fuzz_* binary in
# the build. The exit status is 1 when any target had a finding.
#
#   CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Release -DSY_BUILD_FUZZ=ON
#   cmake --build build-fuzz -j2 --target fuzz_all
#   tests/fuzz/campaign.sh -j 2 -n 10000000 -t 3600
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="$root/build-fuzz"
runs=10000000
secs=3600
jobs=1
rss=2048
maxlen=4096
work=/tmp/sy-fuzz-campaign
merge=1
log_file=""

while getopts "b:n:t:j:m:L:w:Ml:h" opt; do
  case "$opt" in
    b) build="$(cd "$OPTARG" && pwd)" ;;
    n) runs="$OPTARG" ;;
    t) secs="$OPTARG" ;;
    j) jobs="$OPTARG" ;;
    m) rss="$OPTARG" ;;
    L) maxlen="$OPTARG" ;;
    w) work="$OPTARG" ;;
    M) merge=0 ;;
    l) log_file="$OPTARG" ;;
    *) sed -n '2,26p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))

bindir="$build/bin"
[[ -d "$bindir" ]] || bindir="$build/tests/fuzz"
targets=()
if [[ $# -gt 0 ]]; then
  for t in "$@"; do targets+=("${t#fuzz_}"); done
else
  for f in "$bindir"/fuzz_*; do
    b="$(basename "$f")"
    [[ -x "$f" && "$b" != *_replay ]] && targets+=("${b#fuzz_}")
  done
fi
if [[ ${#targets[@]} -eq 0 ]]; then
  echo "campaign.sh: no fuzz_* binaries in $bindir (build with -DSY_BUILD_FUZZ=ON)" >&2
  exit 2
fi
for t in "${targets[@]}"; do
  if [[ ! -x "$bindir/fuzz_$t" ]]; then
    echo "campaign.sh: $bindir/fuzz_$t is missing (cmake --build $build --target fuzz_$t)" >&2
    exit 2
  fi
done
mkdir -p "$work"

# One target: fuzz from the seeds into a work corpus, then merge what is new.
run_one() {
  local t="$1" bin="$bindir/fuzz_$1" seeds="$here/corpus/$1"
  local dir="$work/$t"
  # Findings of an earlier run in the same work directory are kept aside.
  if [[ -n "$(ls -A "$dir/artifacts" 2>/dev/null)" ]]; then
    mv "$dir/artifacts" "$dir/artifacts.$(date +%s)"
  fi
  mkdir -p "$dir/corpus" "$dir/artifacts" "$seeds"
  local start end
  start=$(date +%s)
  ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1:${ASAN_OPTIONS:-}" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    nice -n 19 "$bin" -runs="$runs" -max_total_time="$secs" -rss_limit_mb="$rss" -max_len="$maxlen" \
    -detect_leaks=1 -timeout=25 -print_final_stats=1 -print_pcs=0 \
    -artifact_prefix="$dir/artifacts/" "$dir/corpus" "$seeds" >"$dir/fuzz.log" 2>&1
  local rc=$?
  end=$(date +%s)
  if [[ $merge -eq 1 ]]; then
    nice -n 19 "$bin" -merge=1 -rss_limit_mb="$rss" -timeout=25 "$seeds" "$dir/corpus" \
      >"$dir/merge.log" 2>&1
  fi
  echo "$rc $((end - start))" >"$dir/status"
}
export -f run_one
export bindir here work runs secs rss maxlen merge

printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one "$@"' _ {}

# The table: execs from the final stats, cov/ft from the last status line.
status=0
table="$(
  printf '| %-16s | %12s | %7s | %7s | %6s | %-8s | %s |\n' target execs cov ft secs exit findings
  printf '| %s | %s | %s | %s | %s | %s | %s |\n' --- ---: ---: ---: ---: --- ---
  for t in "${targets[@]}"; do
    d="$work/$t"
    execs=$(grep -ao 'stat::number_of_executed_units: [0-9]*' "$d/fuzz.log" | tail -1 | awk '{print $2}')
    cov=$(grep -aoE 'cov: [0-9]+' "$d/fuzz.log" | tail -1 | awk '{print $2}')
    ft=$(grep -aoE 'ft: [0-9]+' "$d/fuzz.log" | tail -1 | awk '{print $2}')
    rc=? el=?
    [[ -f "$d/status" ]] && read -r rc el <"$d/status"
    found=$(find "$d/artifacts" -type f 2>/dev/null | wc -l)
    what="none"
    if [[ $found -gt 0 || $rc != 0 ]]; then
      what="$found artifact(s) in $d/artifacts, see $d/fuzz.log"
    fi
    printf '| %-16s | %12s | %7s | %7s | %6s | %-8s | %s |\n' "fuzz_$t" "${execs:-?}" \
      "${cov:-?}" "${ft:-?}" "$el" "$rc" "$what"
  done
)"
echo "$table"
if grep -q 'artifact(s)' <<<"$table"; then status=1; fi
if [[ -n "$log_file" ]]; then
  { echo "# $(date -u +%FT%TZ) runs=$runs secs=$secs jobs=$jobs"; echo "$table"; } >>"$log_file"
fi
exit $status
