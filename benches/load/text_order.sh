#!/usr/bin/env bash
# Regenerates src/text-order.txt, the order in which the linker lays out the release binary's
# functions (build.rs hands it to lld as --symbol-ordering-file): the functions that run first
# and together, the rest after. An idle gateway then keeps only the pages of code it runs
# resident, instead of pages where one running function sits among many that never do
# (issue 21 item 4; benches/README.md, thirteenth pass).
#
# It runs the release binary under callgrind (names as the symbol table has them) through:
#   1. the repo's portcullis.toml (TLS, the embedded issuer on SQLite, the demo realm, cookie
#      sessions) on other ports, with the echo upstream: start-up; every kind of request
#      (proxied routes over HTTP/1.1 and HTTP/2, a bearer route, the token grants, discovery,
#      JWKS, userinfo, a browser sign-in and its session route, the management endpoints, the
#      http→https redirect), ten rounds; 15 s idle; shutdown;
#   2. `portcullis sidecar` on the echo upstream: start-up, requests, shutdown; and the same
#      for SIDECAR_BIN, the lean sidecar build, when given.
# Loopback only; about a minute.
#
# usage: benches/load/text_order.sh [--rounds N] [--out FILE]
#   PORTCULLIS_BIN=path   the release binary (default: built now, in $CARGO_TARGET_DIR or
#                         ~/.cache/portcullis-release). Symbol names carry the build's hashes
#                         (rustc, Cargo.lock, the release profile), so the order only applies
#                         to builds of the same; a name the linker does not find is skipped.
#   SIDECAR_BIN=path      also the lean sidecar build (`--no-default-features --features
#                         small-rss`), whose names differ: its order is appended.
set -euo pipefail
# shellcheck source=benches/load/common.sh
source "$(dirname "$0")/common.sh"
repo=$LOAD_REPO
rounds=10; out=$repo/src/text-order.txt
parse_opts --rounds=rounds --out=out -- "$@"
command -v valgrind >/dev/null || { echo "valgrind is not installed"; exit 1; }
release_bin
dir=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$dir"' EXIT
vg=(valgrind --tool=callgrind --demangle=no --dump-instr=no)

# dump PID FILE URL: callgrind writes the counts since the last dump as FILE (OUT.1, OUT.2, …)
# and zeroes them. It takes the command when the program next runs code, so an idle process is
# woken with requests for URL (its health endpoint) until FILE is there.
dump() {
  callgrind_control -d "$1" >/dev/null &
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -e $2 ]] && break
    curl -s -o /dev/null "$3" || true
    sleep 0.2
  done
  wait $!
  [[ -e $2 ]] || { echo "callgrind did not write $2" >&2; exit 1; }
}

"$PORTCULLIS_BIN" echo --listen 127.0.0.1:18080 >/dev/null 2>&1 &
pids+=($!)

# 1. portcullis.toml, ports moved as memory.sh moves them (the redirect listener to 18082: the
#    demo routes' upstream is 18080).
demo=$dir/demo
mkdir -p "$demo/data" "$demo/certs"
cp -r "$repo/routes" "$repo/policies" "$repo/realms" "$demo/"
sed -e 's/\b8443\b/18443/g; s/\b8080\b/18082/g; s/\b8081\b/18081/g; s/\b9000\b/19000/g' \
  "$repo/portcullis.toml" > "$demo/portcullis.toml"
sed -i 's/\b8443\b/18443/g' "$demo"/realms/*.json  # the session client's redirect URIs
(cd "$demo" && exec "${vg[@]}" --callgrind-out-file="$dir/gw.out" "$PORTCULLIS_BIN" run --config portcullis.toml \
  >/dev/null 2>"$dir/gw.log") &
gw=$!; pids+=("$gw")
wait_ready http://127.0.0.1:19000/health/ready "$gw" "$dir/gw.log" 3000
dump "$gw" "$dir/gw.out.1" http://127.0.0.1:19000/health/live

base=https://localhost:18443
realm=$base/auth/realms/myrealm/protocol/openid-connect
c=(curl -sk --max-time 60)
cookie=$(python3 "$LOAD_HERE/signin.py" cookie --base "$base" --start /app/x --user alice --password password)
for ((i = 0; i < rounds; i++)); do
  "${c[@]}" -o /dev/null "$base/echo/hello"
  "${c[@]}" -o /dev/null --http2 "$base/api/public/x" -H 'accept: application/json'
  "${c[@]}" -o /dev/null -X POST --data-binary 'body' "$base/echo/post"
  "${c[@]}" -o /dev/null "$base/auth/realms/myrealm/.well-known/openid-configuration"
  "${c[@]}" -o /dev/null "$realm/certs"
  "${c[@]}" -o /dev/null "$realm/token" -d grant_type=client_credentials -d client_id=svc-reports -d client_secret=svc-secret
  if ((i < 3)); then  # argon2id under valgrind: seconds each
    tokens=$("${c[@]}" "$realm/token" -d grant_type=password -d client_id=myclient -d client_secret=my-client-secret \
      -d username=alice -d password=password -d scope=openid)
  fi
  access=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])' <<<"$tokens")
  refresh=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["refresh_token"])' <<<"$tokens")
  tokens=$("${c[@]}" "$realm/token" -d grant_type=refresh_token -d client_id=myclient -d client_secret=my-client-secret \
    -d refresh_token="$refresh")
  "${c[@]}" -o /dev/null "$realm/userinfo" -H "Authorization: Bearer $access"
  "${c[@]}" -o /dev/null "$base/api/orders/1" -H "Authorization: Bearer $access"
  "${c[@]}" -o /dev/null "$base/api/orders/1"
  "${c[@]}" -o /dev/null "$base/app/x" -H "Cookie: $cookie"
  "${c[@]}" -o /dev/null "$base/app/x"
  "${c[@]}" -o /dev/null "$base/nowhere/../etc/passwd"
  "${c[@]}" -o /dev/null http://127.0.0.1:18082/echo/hello
  "${c[@]}" -o /dev/null http://127.0.0.1:19000/metrics
  "${c[@]}" -o /dev/null http://127.0.0.1:19000/health/ready
done
dump "$gw" "$dir/gw.out.2" http://127.0.0.1:19000/health/live
sleep 15
dump "$gw" "$dir/gw.out.3" http://127.0.0.1:19000/health/live
kill -INT "$gw"; wait "$gw" 2>/dev/null || true

# 2. The sidecar: sidecar PREFIX BIN runs BIN's, its dumps PREFIX.out.1 (start-up), .2
#    (requests) and PREFIX.out (idle and shutdown).
sidecar() {
  (cd "$dir" && exec "${vg[@]}" --callgrind-out-file="$dir/$1.out" "$2" sidecar --listen 127.0.0.1:18900 \
    --upstream http://127.0.0.1:18080 --management 127.0.0.1:18902 >/dev/null 2>"$dir/$1.log") &
  local sc=$!; pids+=("$sc")
  wait_ready http://127.0.0.1:18902/health/ready "$sc" "$dir/$1.log" 3000
  dump "$sc" "$dir/$1.out.1" http://127.0.0.1:18902/health/live
  for ((i = 0; i < rounds; i++)); do
    "${c[@]}" -o /dev/null http://127.0.0.1:18900/hello
    "${c[@]}" -o /dev/null -X POST --data-binary 'body' http://127.0.0.1:18900/post
  done
  dump "$sc" "$dir/$1.out.2" http://127.0.0.1:18902/health/live
  sleep 5
  kill -INT "$sc"; wait "$sc" 2>/dev/null || true
}
sidecar sc "$PORTCULLIS_BIN"
# The lean sidecar build's own names (its features rename the gateway's and the binary's
# functions), after the default build's: each build skips the other's.
binaries=(--binary "$PORTCULLIS_BIN")
lean=()
if [[ -n ${SIDECAR_BIN:-} ]]; then
  sidecar lean "$SIDECAR_BIN"
  binaries+=(--binary "$SIDECAR_BIN")
  lean=(--group "lean sidecar build=$dir/lean.out.2,$dir/lean.out,$dir/lean.out.1")
fi

# Dumps: NAME.out.1 start-up, .2 requests, .3 idle (the sidecar: .1 start-up, .2 requests),
# NAME.out what ran after the last dump (shutdown; the sidecar's idle). The sidecar's functions
# go first, its proxy path before the rest: they are the gateway's data plane too, and a sidecar
# then keeps resident only pages of code it runs, not the issuer's and sessions' that the
# gateway's own request and start-up groups add after them.
python3 "$LOAD_HERE/text_order.py" "${binaries[@]}" --out "$out" \
  --group "proxy path=$dir/sc.out.2" --group "sidecar start-up, idle and shutdown=$dir/sc.out.1,$dir/sc.out" \
  --group "gateway requests=$dir/gw.out.2" --group "gateway idle=$dir/gw.out.3" \
  --group "gateway start-up and shutdown=$dir/gw.out.1,$dir/gw.out" \
  "${lean[@]}"
