#!/usr/bin/env bash
# The criterion regression gate (issue 21 item 5): runs the hot-function benches (path
# normalization and route match, RBAC decision, JWT verify with and without the cache, session
# cookie open) against a saved criterion baseline and fails, naming the benchmark, when one's
# mean got slower by more than the threshold with its whole 95 % confidence interval above it
# (`benches/gate.py` decides). Prints a Markdown table of the figures for benches/README.md.
#
# usage: benches/gate.sh save [NAME]      run the benches and save them as baseline NAME
#        benches/gate.sh [compare] [NAME]  run them against baseline NAME; exit 1 on a regression
#   NAME                 the baseline (default `gate`); save it on the commit to compare with
#   GATE_THRESHOLD=0.10  the relative slowdown that fails the gate
#   GATE_CPU=N           pin the bench processes to CPU N (default: the last one; `none`: don't)
#   GATE_ARGS="…"        more criterion arguments, e.g. "--measurement-time 3"
#   GATE_BENCHES="…"     the bench targets (default: dataplane rbac jwt session)
#   GATE_PROFILE=release build with this cargo profile instead of `bench` (reuses a release
#                        build's dependencies; compare only runs of the same profile)
#   CARGO_TARGET_DIR     where cargo builds; the results are in $CARGO_TARGET_DIR/criterion
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
mode=${1:-compare}
case $mode in
  save|compare) name=${2:-gate} ;;
  *) echo "usage: $0 [save|compare] [NAME]" >&2; exit 2 ;;
esac
threshold=${GATE_THRESHOLD:-0.10}
benches=()
for b in ${GATE_BENCHES:-dataplane rbac jwt session}; do benches+=(--bench "$b"); done
if [[ -n ${GATE_PROFILE:-} ]]; then benches+=(--profile "$GATE_PROFILE"); fi
target=${CARGO_TARGET_DIR:-$repo/target}
export CARGO_TARGET_DIR=$target
results=$target/criterion

if [[ $mode == compare ]]; then
  saved=$(find "$results" -path "*/$name/estimates.json" 2>/dev/null | head -1 || true)
  if [[ -z $saved ]]; then
    echo "no baseline \"$name\" under $results: run \`$0 save $name\` on the commit to compare with" >&2
    exit 2
  fi
fi

cd "$repo"
# Built first, unpinned: only the measurements run on the one CPU.
cargo bench "${benches[@]}" --no-run
cpu=${GATE_CPU:-$(( $(nproc) - 1 ))}
pin=()
if [[ $cpu != none ]] && command -v taskset >/dev/null; then pin=(taskset -c "$cpu"); fi

stamp=$(mktemp)
trap 'rm -f "$stamp"' EXIT
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) (before)" >&2
if [[ $mode == save ]]; then
  # shellcheck disable=SC2086
  "${pin[@]}" cargo bench "${benches[@]}" -- --save-baseline "$name" ${GATE_ARGS:-}
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) (after)" >&2
  python3 "$here/gate.py" --criterion "$results" --since "$stamp" --figures-only
  echo "gate: saved baseline \"$name\"" >&2
else
  # `--baseline` (strict): a bench without the saved baseline fails the run, never passes it.
  # shellcheck disable=SC2086
  "${pin[@]}" cargo bench "${benches[@]}" -- --baseline "$name" ${GATE_ARGS:-}
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) (after)" >&2
  python3 "$here/gate.py" --criterion "$results" --baseline "$name" --since "$stamp" \
    --threshold "$threshold"
fi
