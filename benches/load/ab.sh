#!/usr/bin/env bash
# A/B of two gateway builds in one ../shared/bench/run.sh run: each build's portcullis (public
# route) and bare-proxy, pinned beside HAProxy on the bench's server CPU, so a change is
# compared within one run rather than across runs. Loopback only, time-bounded.
#
# usage: benches/load/ab.sh DIR_A DIR_B [run.sh options, e.g. --rounds 3 --duration 8]
#   DIR_A, DIR_B: directories each holding a release `portcullis` and `bare-proxy`
#   (cargo build --release --features bench-baseline --bins; copy them out between builds).
# Rows: bare-a, bare-b, gw-a, gw-b (public route) beside haproxy, and jwt-a, jwt-b (the jwt
# route, same processes) beside haproxy-jwt. Audit follows PORTCULLIS_BENCH_AUDIT.
set -euo pipefail
[[ $# -ge 2 ]] || { sed -n 2,10p "$0"; exit 2; }
a=$(realpath "$1") b=$(realpath "$2"); shift 2
here=$(cd "$(dirname "$0")" && pwd)
bench=$(cd "$here/../../../shared/bench" && pwd)
work=${BENCH_WORK:-/tmp/proxy-bench}
# shellcheck source=benches/load/gateway-config.sh
source "$here/gateway-config.sh"
"$bench/run.sh" --prepare >/dev/null
dir=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$dir"' EXIT
write_gateway_config "$dir/a" 18500 0 "$work" "$bench"
write_gateway_config "$dir/b" 18520 0 "$work" "$bench"
sed -i 's/127.0.0.1:18590/127.0.0.1:18592/' "$dir/b/portcullis.toml"
python3 -m http.server 18591 --bind 127.0.0.1 --directory "$dir/a/jwks" >/dev/null 2>&1 &
pids+=($!)
cpu=$(( $(nproc) - 1 ))
start() { # NAME DIR ARGS...
  local name=$1 d=$2; shift 2
  (cd "$d" && exec taskset -c "$cpu" "$@" >/dev/null 2>"$dir/$name.log") &
  pids+=($!); eval "pid_$name=$!"
}
start gwa "$dir/a" "$a/portcullis" run --config portcullis.toml
start gwb "$dir/b" "$b/portcullis" run --config portcullis.toml
start barea "$dir" "$a/bare-proxy" 127.0.0.1:18510
start bareb "$dir" "$b/bare-proxy" 127.0.0.1:18511
for port in 18590 18592; do
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null && break; sleep 0.1; done
done
"$bench/run.sh" \
  --extra-noauth "bare-a=http://127.0.0.1:18510/api/admin/ping" --extra-pid "bare-a=$pid_barea" \
  --extra-noauth "bare-b=http://127.0.0.1:18511/api/admin/ping" --extra-pid "bare-b=$pid_bareb" \
  --extra-noauth "gw-a=http://127.0.0.1:18500/public/api/admin/ping" --extra-pid "gw-a=$pid_gwa" \
  --extra-noauth "gw-b=http://127.0.0.1:18520/public/api/admin/ping" --extra-pid "gw-b=$pid_gwb" \
  --extra "jwt-a=http://127.0.0.1:18500/api/admin/ping" --extra-pid "jwt-a=$pid_gwa" \
  --extra "jwt-b=http://127.0.0.1:18520/api/admin/ping" --extra-pid "jwt-b=$pid_gwb" \
  --only haproxy,bare-a,bare-b,gw-a,gw-b,haproxy-jwt,jwt-a,jwt-b "$@"
