#!/usr/bin/env bash
# Memory of the release binary (issue 21 item 4): idle RSS of the gateway with the embedded
# issuer (the repo's portcullis.toml: TLS, SQLite, demo realm; and issuer.sh's bench config),
# RSS under a password-login load (argon2id at Keycloak's parameters, ../shared/bench's
# issuer_bench.py), RSS each 5 s for 30 s after the load stops, and idle RSS of
# `portcullis sidecar`. Prints VmRSS, smaps_rollup's anonymous and file-backed parts and the
# thread count per process. Bounded: about 2.5 minutes with the defaults; loopback only.
#
# usage: benches/load/memory.sh [--load S] [--after S] [--settle S] [--concurrency N]
#   PORTCULLIS_BIN=path   the binary (default: build target/release)
#   SIDECAR_BIN=path      also measure this build's sidecar (e.g. the
#                         `--no-default-features --features small-rss` build)
#   --settle S            seconds between ready and the idle reading (default 15: the realm
#                         import's password hashing thread ends after 10 s idle)
set -euo pipefail
# shellcheck source=benches/load/common.sh
source "$(dirname "$0")/common.sh"
repo=$LOAD_REPO; bench=$LOAD_BENCH
load=60; after=30; settle=15; conc=8
parse_opts --load=load --after=after --settle=settle --concurrency=conc -- "$@"
release_bin
python3 "$LOAD_HERE/text_order.py" --binary "$PORTCULLIS_BIN" --check "$repo/src/text-order.txt"
cpu=$(( $(nproc) - 1 ))
dir=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$dir"' EXIT

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
# "VmRSS 21.3 MiB (anon 9.1, file 12.2), 14 threads"
describe() {
  local pid=$1 anon file
  anon=$(awk '/^(Anonymous|Shmem):/ {s += $2} END {print s}' "/proc/$pid/smaps_rollup")
  file=$(awk '/^Rss:/ {r = $2} /^(Anonymous|Shmem):/ {a += $2} END {print r - a}' "/proc/$pid/smaps_rollup")
  echo "VmRSS $(mib "$(rss_kib "$pid")") MiB (anon $(mib "$anon"), file $(mib "$file")), $(awk '/^Threads/ {print $2}' "/proc/$pid/status") threads"
}
stop() { kill "$1"; wait "$1" 2>/dev/null || true; }

# 1. The repo's portcullis.toml (TLS, SQLite, demo realm, cookie sessions), on other ports.
demo=$dir/demo
mkdir -p "$demo/data" "$demo/certs"
cp -r "$repo/routes" "$repo/policies" "$repo/realms" "$demo/"
sed -e 's/\b8443\b/18443/g; s/\b8080\b/18080/g; s/\b8081\b/18081/g; s/\b9000\b/19000/g' \
  "$repo/portcullis.toml" > "$demo/portcullis.toml"
start_pinned "$demo" "$cpu" "$dir/demo.log"
gw=$GW; pids+=("$gw")
wait_ready http://127.0.0.1:19000/health/ready "$gw" "$dir/demo.log" 150
sleep "$settle"
echo "portcullis.toml (issuer, TLS, SQLite) idle: $(describe "$gw")"
stop "$gw"

# 2. issuer.sh's bench config (one worker, the bench realm) under a login load.
realm_json=$bench/oidc-provider/realm.json
read -r _ _ pw_client pw_secret user realm < <(realm_logins "$realm_json")
issuer_config "$dir/issuer" 18700 18781 18790 "sqlite://$dir/issuer/portcullis.db" "$realm_json"
start_pinned "$dir/issuer" "$cpu" "$dir/issuer.log"
gw=$GW; pids+=("$gw")
wait_ready http://127.0.0.1:18790/health/ready "$gw" "$dir/issuer.log" 150
sleep "$settle"
idle=$(rss_kib "$gw")
echo "issuer bench config idle: $(describe "$gw")"
# The peak, sampled each 0.2 s while the load runs.
(peak=0; while kill -0 "$gw" 2>/dev/null && [[ ! -e $dir/loaded ]]; do
   r=$(rss_kib "$gw"); ((r > peak)) && peak=$r && echo "$peak" > "$dir/peak"; sleep 0.2; done) &
sampler=$!; pids+=("$sampler")
python3 "$bench/issuer_bench.py" --token-url "http://127.0.0.1:18700/auth/realms/$realm/protocol/openid-connect/token" \
  --pid "$gw" --pw-client "$pw_client" --pw-secret "$pw_secret" --user "$user" \
  --duration "$load" --concurrency "$conc" --grants login > "$dir/load.out"
touch "$dir/loaded"; wait "$sampler" 2>/dev/null || true
grep -E '^ *login' "$dir/load.out" | head -1 | sed 's/^/  /'
echo "under ${load} s of logins (concurrency $conc), peak: VmRSS $(mib "$(cat "$dir/peak")") MiB; at the end: $(describe "$gw")"
for ((t = 5; t <= after; t += 5)); do
  sleep 5
  now=$(rss_kib "$gw")
  echo "  ${t} s after: VmRSS $(mib "$now") MiB ($(awk -v a="$now" -v b="$idle" 'BEGIN { printf "%.2f", a / b }')× idle), $(awk '/^Threads/ {print $2}' "/proc/$gw/status") threads"
done
echo "${after} s after the load: $(describe "$gw")"
stop "$gw"

# 3. `portcullis sidecar`: an egress sidecar (plain HTTP, loopback), no issuer.
sidecar() {  # sidecar NAME BIN
  "$2" sidecar --listen 127.0.0.1:18900 --upstream http://127.0.0.1:18901 \
    --management 127.0.0.1:18902 >/dev/null 2>"$dir/sidecar.log" &
  local sc=$!; pids+=("$sc")
  wait_ready http://127.0.0.1:18902/health/ready "$sc" "$dir/sidecar.log" 150
  sleep 5
  echo "sidecar ($1) idle: $(describe "$sc")"
  stop "$sc"
}
sidecar "$(basename "$(dirname "$PORTCULLIS_BIN")")/$(basename "$PORTCULLIS_BIN")" "$PORTCULLIS_BIN"
if [[ -n ${SIDECAR_BIN:-} ]]; then
  sidecar "$SIDECAR_BIN" "$SIDECAR_BIN"
fi
echo "load average: $(loadavg)"
