#!/usr/bin/env bash
# The embedded issuer side by side with an OpenID Certified peer (panva's oidc-provider, in
# ../shared/bench/oidc-provider) on the same Keycloak realm template (its realm.json), loaded by
# ../shared/bench/issuer_bench.py: client_credentials, rotating refresh and password grants,
# ops/s and the issuer's CPU µs per operation. Both issuers are pinned to the last CPU; the
# gateway runs with one worker thread and serves the issuer at /auth on its public listener.
#
# usage: benches/load/issuer.sh [--duration S] [--warmup S] [--concurrency N] [--only portcullis|anchor]
#                                [--grants cc,refresh,login] [--database URL]
#   PORTCULLIS_BIN=path   use this binary instead of building target/release
#   --database URL        the issuer's store (default: a fresh SQLite file); a postgres:// URL
#                         must name an existing, empty database (the issuer migrates it)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bench=${BENCH_DIR:-$repo/../shared/bench}
duration=15; warmup=10; conc=8; only=; grants=cc,refresh,login; database=
while (($#)); do
  case $1 in
    --duration) duration=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --concurrency) conc=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --grants) grants=$2; shift 2 ;;
    --database) database=$2; shift 2 ;;
    *) echo "unknown argument $1"; exit 2 ;;
  esac
done
if [[ -z ${PORTCULLIS_BIN:-} ]]; then
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/portcullis-release}
  (cd "$repo" && cargo build --release --bin portcullis)
  PORTCULLIS_BIN=$CARGO_TARGET_DIR/release/portcullis
fi
realm_json=$bench/oidc-provider/realm.json
cpu=$(( $(nproc) - 1 ))
dir=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$dir"' EXIT
# Read the template's clients and first user for the loader (no secrets are hard-coded here).
read -r cc_client cc_secret pw_client pw_secret user < <(python3 - "$realm_json" <<'PY'
import json, os, re, sys
# ${VAR} / ${VAR:default} as the importers resolve them.
sub = lambda s: re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}", lambda m: os.environ.get(m[1], m[2] if m[2] is not None else m[0]), s)
r = json.loads(sub(open(sys.argv[1]).read()))
cs = r["clients"]
cc = next(c for c in cs if c.get("serviceAccountsEnabled"))
pw = next(c for c in cs if c.get("directAccessGrantsEnabled") and not c.get("publicClient"))
u = r["users"][0]
pwd = next(c["value"] for c in u["credentials"] if c["type"] == "password")
print(cc["clientId"], cc.get("secret", ""), pw["clientId"], pw.get("secret", ""), f'{u["username"]}:{pwd}')
PY
)
realm=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["realm"])' "$realm_json")
load() {  # load NAME TOKEN_URL PID
  echo "== $1"
  python3 "$bench/issuer_bench.py" --token-url "$2" --pid "$3" \
    --cc-client "$cc_client" --cc-secret "$cc_secret" --pw-client "$pw_client" --pw-secret "$pw_secret" \
    --user "$user" --warmup "$warmup" --duration "$duration" --concurrency "$conc" --grants "$grants"
}
if [[ -z $only || $only == portcullis ]]; then
  mkdir -p "$dir/routes"
  cat > "$dir/portcullis.toml" <<TOML
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
database = "${database:-sqlite://$dir/portcullis.db}"
import = ["$realm_json"]
TOML
  printf '[[route]]\nname = "auth"\nprefix = "/auth"\nupstreams = ["embedded:issuer"]\n' > "$dir/routes/auth.toml"
  (cd "$dir" && exec taskset -c "$cpu" "$PORTCULLIS_BIN" run --config portcullis.toml >/dev/null 2>"$dir/gw.log") &
  gw=$!; pids+=("$gw")
  for _ in $(seq 100); do curl -sf http://127.0.0.1:18790/health/ready >/dev/null && break; sleep 0.1; done
  echo "portcullis idle RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$gw/status)"
  load portcullis "http://127.0.0.1:18700/auth/realms/$realm/protocol/openid-connect/token" "$gw"
  kill "$gw"
fi
if [[ -z $only || $only == anchor ]]; then
  anchor=$("$bench/oidc-provider/start.sh" --pin --port 18600 | head -1); pids+=("$anchor")
  echo "oidc-provider idle RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$anchor/status)"
  load oidc-provider "http://127.0.0.1:18600/auth/realms/$realm/protocol/openid-connect/token" "$anchor"
fi
