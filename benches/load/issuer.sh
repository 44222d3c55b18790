#!/usr/bin/env bash
# The embedded issuer side by side with an OpenID Certified peer (panva's oidc-provider, in
# ../shared/bench/oidc-provider) on the same Keycloak realm template (its realm.json), loaded by
# ../shared/bench/issuer_bench.py: client_credentials, rotating refresh and password grants,
# ops/s and the issuer's CPU µs per operation. Both issuers are pinned to the last CPU; the
# gateway runs with one worker thread and serves the issuer at /auth on its public listener.
#
# The floors, on the same CPU just before and just after each issuer's load (CPU time, one
# thread): one RSA-2048 signature (`openssl speed rsa2048`) for client_credentials and refresh,
# one argon2id hash at the realm's parameters (crates/blamka/examples/argon2id_floor.rs, what
# the issuer's password check runs) for the password grant; each grant's ratio to its floor is
# printed beside the result.
#
# usage: benches/load/issuer.sh [--duration S] [--warmup S] [--concurrency N] [--only portcullis|anchor]
#                                [--grants cc,refresh,login] [--database URL]
#   PORTCULLIS_BIN=path   use this binary instead of building target/release
#   ARGON2_BIN=path       the argon2id_floor example (default: built next to it)
#   --floor-seconds S     how long each `openssl speed` runs (default 5)
#   --port-base P         the gateway's public port (default 18700; internal P+81, management
#                         P+90, oidc-provider P-100), so two runs on one machine don't collide
#   --database URL        the issuer's store (default: a fresh SQLite file); a postgres:// URL
#                         must name an existing, empty database (the issuer migrates it)
set -euo pipefail
# shellcheck source=benches/load/common.sh
source "$(dirname "$0")/common.sh"
repo=$LOAD_REPO; bench=$LOAD_BENCH
duration=15; warmup=10; conc=8; only=; grants=cc,refresh,login; database=; floor_s=5; port=18700
parse_opts --duration=duration --warmup=warmup --concurrency=conc --only=only --grants=grants \
  --database=database --floor-seconds=floor_s --port-base=port -- "$@"
release_bin
if [[ $grants == *login* && -z ${ARGON2_BIN:-} ]]; then
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/portcullis-release}
  (cd "$repo" && cargo build --release -q -p portcullis-blamka --example argon2id_floor)
  ARGON2_BIN=$CARGO_TARGET_DIR/release/examples/argon2id_floor
fi
realm_json=$bench/oidc-provider/realm.json
cpu=$(( $(nproc) - 1 ))
dir=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$dir"' EXIT
read -r cc_client cc_secret pw_client pw_secret user realm < <(realm_logins "$realm_json")
# µs of CPU per RSA-2048 signature, one thread on $cpu (openssl divides by its user time).
rsa_floor() {
  taskset -c "$cpu" openssl speed -seconds "$floor_s" rsa2048 2>/dev/null |
    awk '$1 == "rsa" && $2 == "2048" { printf "%.1f", 1e6 / $6 }'
}
# µs of CPU (user + system) per argon2id hash at the realm's parameters, one thread on $cpu.
argon2_floor() {
  local n=120
  /usr/bin/time -f '%U %S' -o "$dir/argon2.time" taskset -c "$cpu" "$ARGON2_BIN" $n >/dev/null
  awk -v n=$n '{ printf "%.0f", ($1 + $2) * 1e6 / n }' "$dir/argon2.time"
}
floors() {  # floors -> "RSA_US ARGON2_US" ("-" for what the grants don't need)
  local r=- a=-
  [[ $grants == *cc* || $grants == *refresh* ]] && r=$(rsa_floor)
  [[ $grants == *login* ]] && a=$(argon2_floor)
  echo "$r $a"
}
load() {  # load NAME TOKEN_URL PID
  echo "== $1 (load average $(loadavg))"
  local before after
  read -r -a before < <(floors)
  python3 "$bench/issuer_bench.py" --token-url "$2" --pid "$3" \
    --cc-client "$cc_client" --cc-secret "$cc_secret" --pw-client "$pw_client" --pw-secret "$pw_secret" \
    --user "$user" --warmup "$warmup" --duration "$duration" --concurrency "$conc" --grants "$grants" |
    tee "$dir/load.out"
  read -r -a after < <(floors)
  # The grants' ratios to their floors (the mean of the floor before and after the load).
  python3 - "$dir/load.out" "${before[@]}" "${after[@]}" "$(loadavg)" <<'PY'
import sys
out, rb, ab, ra, aa, la = sys.argv[1:7]
last = open(out).read().strip().splitlines()[-1]
got = dict(kv.split("=", 1) for kv in last.split() if "=" in kv)
def mean(x, y):
    v = [float(z) for z in (x, y) if z != "-"]
    return sum(v) / len(v) if v else None
rsa, argon = mean(rb, ra), mean(ab, aa)
if rsa:
    print(f"floor: RSA-2048 sign {rsa:.1f} us (openssl speed, one thread: {rb} before, {ra} after)")
if argon:
    print(f"floor: argon2id m=7168 t=5 p=1 {argon:.0f} us (one thread: {ab} before, {aa} after)")
for g, floor, name in (("cc", rsa, "RSA sign"), ("refresh", rsa, "RSA sign"), ("login", argon, "argon2id")):
    us = got.get(f"{g}_us")
    if floor and us not in (None, "", "-", "nan"):
        print(f"ratio: {g} {float(us):.0f} us = {float(us) / floor:.3f}x one {name}")
print(f"load average after: {la}")
PY
}
if [[ -z $only || $only == portcullis ]]; then
  issuer_config "$dir" "$port" $((port + 81)) $((port + 90)) "${database:-sqlite://$dir/portcullis.db}" "$realm_json"
  start_pinned "$dir" "$cpu" "$dir/gw.log"
  gw=$GW; pids+=("$gw")
  wait_ready "http://127.0.0.1:$((port + 90))/health/ready" "$gw" "$dir/gw.log" 100
  echo "portcullis idle RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$gw/status)"
  load portcullis "http://127.0.0.1:$port/auth/realms/$realm/protocol/openid-connect/token" "$gw"
  kill "$gw"
fi
if [[ -z $only || $only == anchor ]]; then
  anchor=$("$bench/oidc-provider/start.sh" --pin --port $((port - 100)) | head -1); pids+=("$anchor")
  echo "oidc-provider idle RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$anchor/status)"
  load oidc-provider "http://127.0.0.1:$((port - 100))/auth/realms/$realm/protocol/openid-connect/token" "$anchor"
fi
