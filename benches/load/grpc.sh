#!/usr/bin/env bash
# gRPC unary through the gateway (issue 19) beside direct, loaded by h2load (nghttp2-client)
# with a raw gRPC frame as the body (POST, content-type application/grpc, te: trailers).
# The origin is nghttpd (nghttp2-server), serving a fixed gRPC reply frame for
# /bench.Echo/Unary with the trailer `grpc-status: 0`; one process in cleartext (h2c), one
# over TLS (the bench's RSA-2048 certificate), both pinned beside the gateway.
#   direct-h2c      h2load → nghttpd h2c
#   direct-tls      h2load → nghttpd over TLS (h2 by ALPN)
#   portcullis-tls  h2load → gateway over TLS (h2 by ALPN; public listener, route without
#                   auth) → nghttpd h2c (`upstream_protocol = "h2c"`)
# CPU µs per call from /proc/PID/stat: the gateway's, and the origin's beside it.
#
# usage: benches/load/grpc.sh [--duration S] [--rounds N] [--clients C] [--streams M]
set -euo pipefail
source "$(dirname "$0")/features-lib.sh"
duration=8; rounds=3; clients=10; streams=10
while (($#)); do
  case $1 in
    --duration) duration=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --streams) streams=$2; shift 2 ;;
    *) die "unknown argument $1" ;;
  esac
done
((duration <= 20)) || die "--duration at most 20"
command -v h2load >/dev/null && command -v nghttpd >/dev/null \
  || die "needs h2load and nghttpd: apt-get install nghttp2-client nghttp2-server"
docs=$FEAT_DIR/grpc-docs; mkdir -p "$docs/bench.Echo"
# EchoReply { message = "ok" } and EchoRequest { message = "hello" }, each in a gRPC frame
# (0 = not compressed, 4-byte big-endian length).
printf '\x00\x00\x00\x00\x04\x0a\x02ok' > "$docs/bench.Echo/Unary"
printf '\x00\x00\x00\x00\x07\x0a\x05hello' > "$FEAT_DIR/request.bin"
start_nghttpd() {  # start_nghttpd NAME PORT [KEY CERT]
  # shellcheck disable=SC2046
  $(pin_server) nghttpd -a 127.0.0.1 -d "$docs" --trailer 'grpc-status: 0' \
    $( [[ $# == 2 ]] && echo --no-tls ) "$2" "${@:3}" >/dev/null 2>"$FEAT_DIR/$1.log" &
  STARTED_PIDS+=("$!"); SVC_PID[$1]=$!
  wait_port "$2" "$!" "$1"
}
start_nghttpd origin-h2c 28100
start_nghttpd origin-tls 28101 "$WORK/tls/server.key" "$WORK/tls/server.crt"
d=$FEAT_DIR/gw; mkdir -p "$d/routes"
cat > "$d/portcullis.toml" <<TOML
[listen]
public = "127.0.0.1:28743"
management = "127.0.0.1:28794"
[runtime]
worker_threads = 1
audit_log = false
[tls]
cert = "$WORK/tls/server.crt"
key = "$WORK/tls/server.key"
self_signed_if_missing = false
[routing]
watch = false
TOML
cat > "$d/routes/bench.toml" <<TOML
[[route]]
name = "grpc"
prefix = "/bench.Echo"
upstreams = ["http://127.0.0.1:28100"]
upstream_protocol = "h2c"
TOML
start_gateway portcullis "$d" 28794
gw=${GW_PID[portcullis]}
declare -A URL=([direct-h2c]=http://127.0.0.1:28100/bench.Echo/Unary
  [direct-tls]=https://127.0.0.1:28101/bench.Echo/Unary [portcullis-tls]=https://127.0.0.1:28743/bench.Echo/Unary)
declare -A PIDS=([direct-h2c]="${SVC_PID[origin-h2c]}" [direct-tls]="${SVC_PID[origin-tls]}" [portcullis-tls]="$gw")
NAMES=(direct-h2c direct-tls portcullis-tls)
h2() {  # h2 URL SECONDS [WARMUP]
  # shellcheck disable=SC2046
  timeout $(($2 + 30)) $(pin_client) h2load -c "$clients" -m "$streams" -D "$2" ${3:+--warm-up-time=$3} \
    -d "$FEAT_DIR/request.bin" -H 'content-type: application/grpc' -H 'te: trailers' "$1"
}
for n in "${NAMES[@]}"; do  # preflight: every call a 2xx
  out=$(h2 "${URL[$n]}" 1)
  grep -q ' 0 failed, 0 errored' <<<"$out" && grep -q 'status codes: [1-9][0-9]* 2xx' <<<"$out" \
    || { echo "$out" >&2; die "preflight $n failed"; }
done
log "h2load -c $clients -m $streams, ${duration}s (+2s warm-up) per target, $rounds rounds; load $(loadavg)"
declare -A REQ=() CPU=() OCPU=() RPS=() MEAN=()
for ((r = 1; r <= rounds; r++)); do
  for n in "${NAMES[@]}"; do
    # shellcheck disable=SC2086
    c0=$(cpu_us ${PIDS[$n]}); o0=$(cpu_us "${SVC_PID[origin-h2c]}")
    out=$(h2 "${URL[$n]}" "$duration" 2)
    # shellcheck disable=SC2086
    c1=$(cpu_us ${PIDS[$n]}); o1=$(cpu_us "${SVC_PID[origin-h2c]}")
    ok=$(awk '/^requests:/ {print $8}' <<<"$out")
    grep -q ' 0 failed, 0 errored' <<<"$out" || log "WARNING $n: $(grep '^requests:' <<<"$out")"
    rps=$(awk '/^finished in/ {print $4}' <<<"$out")
    mean=$(awk '/^time for request:/ {print $6}' <<<"$out")
    REQ[$n]=$(( ${REQ[$n]:-0} + ok )); CPU[$n]=$(( ${CPU[$n]:-0} + c1 - c0 )); OCPU[$n]=$(( ${OCPU[$n]:-0} + o1 - o0 ))
    RPS[$n]="${RPS[$n]:-}${RPS[$n]:+ }$rps"; MEAN[$n]="${MEAN[$n]:-}${MEAN[$n]:+ }$mean"
    log "round $r $n: $rps req/s, mean $mean, $(( (c1 - c0) / ok )) us/call"
  done
done
echo "# gRPC unary, h2load -c $clients -m $streams -D $duration, $rounds rounds; load $(loadavg)"
printf '%-16s %-28s %-28s %10s %16s\n' target "req/s (per round)" "mean latency (per round)" "us/call" "origin-h2c us/call"
for n in "${NAMES[@]}"; do
  o=-; [[ $n != direct-tls ]] && o=$(awk -v u="${OCPU[$n]}" -v r="${REQ[$n]}" 'BEGIN { printf "%.1f", u / r }')
  printf '%-16s %-28s %-28s %10.1f %16s\n' "$n" "${RPS[$n]}" "${MEAN[$n]}" \
    "$(awk -v u="${CPU[$n]}" -v r="${REQ[$n]}" 'BEGIN { print u / r }')" "$o"
done
