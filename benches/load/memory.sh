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
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bench=${BENCH_DIR:-$repo/../shared/bench}
load=60; after=30; settle=15; conc=8
while (($#)); do
  case $1 in
    --load) load=$2; shift 2 ;;
    --after) after=$2; shift 2 ;;
    --settle) settle=$2; shift 2 ;;
    --concurrency) conc=$2; shift 2 ;;
    *) echo "unknown argument $1"; exit 2 ;;
  esac
done
if [[ -z ${PORTCULLIS_BIN:-} ]]; then
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/portcullis-release}
  (cd "$repo" && cargo build --release --bin portcullis)
  PORTCULLIS_BIN=$CARGO_TARGET_DIR/release/portcullis
fi
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
wait_ready() {  # wait_ready URL PID
  for _ in $(seq 150); do
    curl -sf "$1" >/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { echo "the gateway exited; its log:"; cat "$dir"/*.log; exit 1; }
    sleep 0.1
  done
  echo "not ready: $1"; exit 1
}
stop() { kill "$1"; wait "$1" 2>/dev/null || true; }

# 1. The repo's portcullis.toml (TLS, SQLite, demo realm, cookie sessions), on other ports.
demo=$dir/demo
mkdir -p "$demo/data" "$demo/certs"
cp -r "$repo/routes" "$repo/policies" "$repo/realms" "$demo/"
sed -e 's/\b8443\b/18443/g; s/\b8080\b/18080/g; s/\b8081\b/18081/g; s/\b9000\b/19000/g' \
  "$repo/portcullis.toml" > "$demo/portcullis.toml"
(cd "$demo" && exec taskset -c "$cpu" "$PORTCULLIS_BIN" run --config portcullis.toml >/dev/null 2>"$dir/demo.log") &
gw=$!; pids+=("$gw")
wait_ready http://127.0.0.1:19000/health/ready "$gw"
sleep "$settle"
echo "portcullis.toml (issuer, TLS, SQLite) idle: $(describe "$gw")"
stop "$gw"

# 2. issuer.sh's bench config (one worker, the bench realm) under a login load.
realm_json=$bench/oidc-provider/realm.json
read -r pw_client pw_secret user realm < <(python3 - "$realm_json" <<'PY'
import json, os, re, sys
sub = lambda s: re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}", lambda m: os.environ.get(m[1], m[2] if m[2] is not None else m[0]), s)
r = json.loads(sub(open(sys.argv[1]).read()))
pw = next(c for c in r["clients"] if c.get("directAccessGrantsEnabled") and not c.get("publicClient"))
u = r["users"][0]
pwd = next(c["value"] for c in u["credentials"] if c["type"] == "password")
print(pw["clientId"], pw.get("secret", ""), f'{u["username"]}:{pwd}', r["realm"])
PY
)
mkdir -p "$dir/issuer/routes"
cat > "$dir/issuer/portcullis.toml" <<TOML
[listen]
public = "127.0.0.1:18700"
internal = "127.0.0.1:18781"
management = "127.0.0.1:18790"
[runtime]
worker_threads = 1
audit_log = false
[routing]
watch = false
[issuer]
database = "sqlite://$dir/issuer/portcullis.db"
import = ["$realm_json"]
TOML
printf '[[route]]\nname = "auth"\nprefix = "/auth"\nupstreams = ["embedded:issuer"]\n' > "$dir/issuer/routes/auth.toml"
(cd "$dir/issuer" && exec taskset -c "$cpu" "$PORTCULLIS_BIN" run --config portcullis.toml >/dev/null 2>"$dir/issuer.log") &
gw=$!; pids+=("$gw")
wait_ready http://127.0.0.1:18790/health/ready "$gw"
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
  wait_ready http://127.0.0.1:18902/health/ready "$sc"
  sleep 5
  echo "sidecar ($1) idle: $(describe "$sc")"
  stop "$sc"
}
sidecar "$(basename "$(dirname "$PORTCULLIS_BIN")")/$(basename "$PORTCULLIS_BIN")" "$PORTCULLIS_BIN"
if [[ -n ${SIDECAR_BIN:-} ]]; then
  sidecar "$SIDECAR_BIN" "$SIDECAR_BIN"
fi
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
