#!/usr/bin/env bash
# Instructions per request of the gateway (or the bare Pingora baseline) under load, counted
# by valgrind's callgrind: unlike CPU time, the count stays put on a shared, noisy VM, so a
# change of a few hundred instructions per request shows. Same configuration as gateway.sh;
# plain HTTP, loopback only, time-bounded.
#
# `session`: the configuration of session.sh instead (TLS, the embedded issuer, one sign-in by
# signin.py), and two counts from the same process: the `jwt` route /api, then the `session`
# route /app, each request carrying both the cookie and the bearer token (the same bytes).
#
# `--tls` (public, jwt, bare): the same over TLS keep-alive, as `gateway.sh --tls` runs it.
#
# usage: benches/load/callgrind.sh [public|jwt|bare|session] [--tls] [--duration S] [--connections N] [--keep DIR]
#   PORTCULLIS_BIN=path   the release binary (default ~/.cache/portcullis-release/release/portcullis)
#   BARE_BIN=path         the bare-proxy binary (default: next to PORTCULLIS_BIN)
# Prints instructions per request and the top functions (self cost); --keep DIR keeps the
# callgrind.out file for callgrind_annotate.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bench=${BENCH_DIR:-$repo/../shared/bench}
target=public; duration=10; conns=10; keep=; tls=0
while (($#)); do
  case $1 in
    public|jwt|bare|session) target=$1; shift ;;
    --tls) tls=1; shift ;;
    --duration) duration=$2; shift 2 ;;
    --connections) conns=$2; shift 2 ;;
    --keep) keep=$2; shift 2 ;;
    *) echo "unknown argument $1"; exit 2 ;;
  esac
done
command -v valgrind >/dev/null || { echo "valgrind is not installed"; exit 1; }
command -v wrk >/dev/null || { echo "wrk is not installed (../shared/bench/setup.sh)"; exit 1; }
PORTCULLIS_BIN=${PORTCULLIS_BIN:-$HOME/.cache/portcullis-release/release/portcullis}
BARE_BIN=${BARE_BIN:-$(dirname "$PORTCULLIS_BIN")/bare-proxy}

# shellcheck source=/dev/null
source "$bench/lib.sh"
prepare_work
token=$(mint --ttl 3600)
dir=$(mktemp -d)
jwks_pid=; target_pid=
cleanup() {
  kill $jwks_pid $target_pid 2>/dev/null || true
  wait $target_pid 2>/dev/null || true
  stop_all
  rm -rf "$dir"
}
trap cleanup EXIT
start_origin
cpu=$(( $(nproc) - 1 ))
vg=(valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" --dump-instr=no)
hdrs=()
case $target in
  bare)
    tls_files=()
    if [[ $tls == 1 ]]; then
      tls_files=("$WORK/tls/server.crt" "$WORK/tls/server.key")
      addr=127.0.0.1:18544; url=https://$addr/api/admin/ping
    else
      addr=127.0.0.1:18510; url=http://$addr/api/admin/ping
    fi
    (cd "$dir" && exec taskset -c "$cpu" "${vg[@]}" "$BARE_BIN" "$addr" "${tls_files[@]}" >/dev/null 2>"$dir/stderr.log") &
    ;;
  session)
    port=18543; mgmt=18590
    # shellcheck source=benches/load/session-config.sh
    source "$here/session-config.sh"
    write_session_config "$dir" "$repo" "$WORK" "$port" "$mgmt" 18581 "$ORIGIN_PORT" bench-session-secret
    url=https://127.0.0.1:$port/api/admin/ping
    (cd "$dir" && exec taskset -c "$cpu" "${vg[@]}" "$PORTCULLIS_BIN" run --config portcullis.toml >/dev/null 2>"$dir/stderr.log") &
    ;;
  *)
    port=$([[ $tls == 1 ]] && echo 18543 || echo 18500)
    scheme=$([[ $tls == 1 ]] && echo https || echo http)
    # shellcheck source=benches/load/gateway-config.sh
    source "$here/gateway-config.sh"
    write_gateway_config "$dir" "$port" "$tls" "$WORK" "$bench"
    (cd "$dir/jwks" && exec python3 -m http.server 18591 --bind 127.0.0.1 >/dev/null 2>&1) &
    jwks_pid=$!
    for _ in $(seq 50); do curl -sf http://127.0.0.1:18591/jwks.json >/dev/null && break; sleep 0.1; done
    url=$scheme://127.0.0.1:$port/$([[ $target == jwt ]] && echo api || echo public/api)/admin/ping
    (cd "$dir" && exec taskset -c "$cpu" "${vg[@]}" "$PORTCULLIS_BIN" run --config portcullis.toml >/dev/null 2>"$dir/stderr.log") &
    ;;
esac
target_pid=$!
if [[ $target == session ]]; then
  # Sign in once (under valgrind: slow, but once) and take a token of the same user.
  for _ in $(seq 600); do curl -sf "http://127.0.0.1:$mgmt/health/ready" >/dev/null && break; sleep 0.2; done
  origin=https://localhost:$port
  cookie=$(python3 "$here/signin.py" cookie --base "$origin" --start /app/api/admin/ping --user alice --password password)
  [[ $cookie == __Host-portcullis* ]] || { echo "no session cookie after sign-in"; cat "$dir/stderr.log"; exit 1; }
  token=$(curl -sk "$origin/auth/realms/myrealm/protocol/openid-connect/token" -d grant_type=password \
    -d client_id=portcullis -d client_secret=bench-session-secret -d username=alice -d password=password \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  hdrs=(-H "Cookie: $cookie")
  echo "cookie ${#cookie} bytes, token ${#token} bytes"
fi
code=
for _ in $(seq 300); do
  code=$(curl -sk -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "${hdrs[@]}" "$url" || true)
  [[ $code == 200 ]] && break
  sleep 0.2
done
[[ $code == 200 ]] || { echo "target did not answer 200 (last: $code)"; cat "$dir/stderr.log"; exit 1; }

load() {  # load SECONDS URL -> prints the request count; any answer but 2xx fails the run
  local out
  out=$(taskset -c 0 wrk -t1 -c"$conns" -d"${1}s" -H "Authorization: Bearer $token" "${hdrs[@]}" "$2")
  if grep -q "Non-2xx" <<<"$out"; then echo "$2 answered non-2xx: $out" >&2; exit 1; fi
  awk '/requests in/ { print $1 }' <<<"$out"
}
measure() {  # measure NAME URL: instructions per request of a load on URL, and the top functions
  local name=$1 u=$2 requests out total
  load 3 "$u" >/dev/null
  callgrind_control -z "$target_pid" >/dev/null
  requests=$(load "$duration" "$u")
  callgrind_control -d "$target_pid" >/dev/null
  sleep 1
  out=$(ls -t "$dir"/callgrind.out* | head -1)
  total=$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }')
  echo "target=$name requests=$requests instructions=$total per_request=$(( total / requests ))"
  python3 "$here/callgrind_top.py" "$out" "$requests" 40
  if [[ -n $keep ]]; then mkdir -p "$keep" && cp "$out" "$keep/callgrind.$name.out"; fi
}
if [[ $target == session ]]; then
  measure session-jwt "$url"
  measure session "https://127.0.0.1:$port/app/api/admin/ping"
else
  measure "$target$([[ $tls == 1 ]] && echo -tls || true)" "$url"
fi
