#!/usr/bin/env bash
# Load-test the gateway beside nginx and HAProxy with ../shared/bench/run.sh (loopback only,
# time-bounded). Starts one release gateway pinned to the bench's server CPU with one worker
# thread and two routes, both measured in the same run as the peers:
#   portcullis[-tls]      public route (guard + forwarded headers + audit log), no token check
#   portcullis-jwt[-tls]  jwt route: RS256 bearer token (the haproxy-jwt token) + RBAC (/admins)
# and the baseline, a bare Pingora proxy built the same way (src/bin/bare-proxy.rs):
#   bare-pingora[-tls]    every request → origin with X-Forwarded-For/-Proto, nothing else
#
# usage: benches/load/gateway.sh [--tls] [run.sh options...]
#   PORTCULLIS_BIN=path   use this binary instead of building target/release
#   BARE_BIN=path         the bare-proxy binary (default: next to PORTCULLIS_BIN, if built)
#   PORTCULLIS_BENCH_AUDIT=false   turn the audit log off
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bench=${BENCH_DIR:-$repo/../shared/bench}
[[ -x $bench/run.sh ]] || { echo "bench harness not found at $bench (set BENCH_DIR)"; exit 1; }
tls=0; args=()
for a in "$@"; do
  case $a in --tls) tls=1 ;; *) args+=("$a") ;; esac
done
if [[ -z ${PORTCULLIS_BIN:-} ]]; then
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/portcullis-release}
  (cd "$repo" && cargo build --release --features bench-baseline --bins)
  PORTCULLIS_BIN=$CARGO_TARGET_DIR/release/portcullis
fi
BARE_BIN=${BARE_BIN:-$(dirname "$PORTCULLIS_BIN")/bare-proxy}
"$bench/run.sh" --prepare >/dev/null
work=${BENCH_WORK:-/tmp/proxy-bench}
dir=$(mktemp -d)
gw=; jwks_pid=; bare=
trap 'kill $gw $jwks_pid $bare 2>/dev/null || true; wait $gw 2>/dev/null || true; rm -rf "$dir"' EXIT
port=$([[ $tls == 1 ]] && echo 18543 || echo 18500)
scheme=$([[ $tls == 1 ]] && echo https || echo http)
sfx=$([[ $tls == 1 ]] && echo -tls || true)
# shellcheck source=benches/load/gateway-config.sh
source "$here/gateway-config.sh"
write_gateway_config "$dir" "$port" "$tls" "$work" "$bench"
(cd "$dir/jwks" && exec python3 -m http.server 18591 --bind 127.0.0.1 >/dev/null 2>&1) &
jwks_pid=$!

cpu=$(( $(nproc) - 1 ))
for _ in $(seq 50); do curl -sf http://127.0.0.1:18591/jwks.json >/dev/null && break; sleep 0.1; done
(cd "$dir" && exec taskset -c "$cpu" "$PORTCULLIS_BIN" run --config portcullis.toml >/dev/null 2>"$dir/stderr.log") &
gw=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:18590/health/ready >/dev/null && break; sleep 0.1; done
curl -sf http://127.0.0.1:18590/health/ready >/dev/null || { cat "$dir/stderr.log"; exit 1; }
bare_args=()
if [[ -x $BARE_BIN ]]; then
  bare_port=$([[ $tls == 1 ]] && echo 18544 || echo 18510)
  tls_files=()
  [[ $tls == 1 ]] && tls_files=("$work/tls/server.crt" "$work/tls/server.key")
  taskset -c "$cpu" "$BARE_BIN" "127.0.0.1:$bare_port" "${tls_files[@]}" >/dev/null 2>"$dir/bare.log" &
  bare=$!
  for _ in $(seq 50); do curl -sk -o /dev/null "$scheme://127.0.0.1:$bare_port/" && break; sleep 0.1; done
  bare_args=(--extra-noauth "bare-pingora$sfx=$scheme://127.0.0.1:$bare_port/api/admin/ping" --extra-pid "bare-pingora$sfx=$bare")
fi
"$bench/run.sh" "${bare_args[@]}" \
  --extra-noauth "portcullis$sfx=$scheme://127.0.0.1:$port/public/api/admin/ping" --extra-pid "portcullis$sfx=$gw" \
  --extra "portcullis-jwt$sfx=$scheme://127.0.0.1:$port/api/admin/ping" --extra-pid "portcullis-jwt$sfx=$gw" \
  "${args[@]}"
