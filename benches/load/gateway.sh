#!/usr/bin/env bash
# Load-test the gateway beside nginx and HAProxy with ../shared/bench/run.sh (loopback only,
# time-bounded). Builds the release binary, starts it pinned to the bench's server CPU with one
# worker thread, runs the harness, stops the gateway.
#
# usage: benches/load/gateway.sh [--tls] [--auth] [run.sh options...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bench=${BENCH_DIR:-$repo/../shared/bench}
[[ -x $bench/run.sh ]] || { echo "bench harness not found at $bench (set BENCH_DIR)"; exit 1; }
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/portcullis-target}
bin=$CARGO_TARGET_DIR/release/portcullis
tls=0; auth=0; args=()
for a in "$@"; do
  case $a in --tls) tls=1 ;; --auth) auth=1 ;; *) args+=("$a") ;; esac
done
(cd "$repo" && cargo build --release --bin portcullis)
"$bench/run.sh" --prepare >/dev/null
work=${BENCH_WORK:-/tmp/proxy-bench}
dir=$(mktemp -d)
trap 'kill $gw 2>/dev/null || true; wait $gw 2>/dev/null || true; rm -rf "$dir"' EXIT
mkdir -p "$dir/routes" "$dir/policies"
cat > "$dir/portcullis.toml" <<TOML
[listen]
public = "127.0.0.1:$([[ $tls == 1 ]] && echo 18543 || echo 18500)"
management = "127.0.0.1:18590"
[runtime]
worker_threads = 1
audit_log = ${PORTCULLIS_BENCH_AUDIT:-true}
[routing]
watch = false
TOML
if [[ $tls == 1 ]]; then
  printf '[tls]\ncert = "%s"\nkey = "%s"\nself_signed_if_missing = false\n' "$work/tls/server.crt" "$work/tls/server.key" >> "$dir/portcullis.toml"
fi
if [[ $auth == 1 ]]; then
  cat >> "$dir/portcullis.toml" <<TOML
[[trust]]
issuer = "${BENCH_JWT_ISS:-https://idp.bench.local/realms/bench}"
jwks_uri = "file://$work/jwt/jwks.json"
audiences = ["${BENCH_JWT_AUD:-bench-gateway}"]
algorithms = ["RS256"]
TOML
fi
cat > "$dir/routes/bench.toml" <<TOML
[[route]]
name = "bench"
prefix = "/api"
upstreams = ["http://127.0.0.1:18000"]
auth = "$([[ $auth == 1 ]] && echo jwt || echo public)"
TOML
cpu=$(( $(nproc) - 1 ))
(cd "$dir" && exec taskset -c "$cpu" "$bin" run --config portcullis.toml >/dev/null 2>"$dir/stderr.log") &
gw=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:18590/health/ready >/dev/null && break; sleep 0.1; done
name=portcullis$([[ $auth == 1 ]] && echo -jwt)$([[ $tls == 1 ]] && echo -tls)
scheme=$([[ $tls == 1 ]] && echo https || echo http)
port=$([[ $tls == 1 ]] && echo 18543 || echo 18500)
flag=$([[ $auth == 1 ]] && echo --extra || echo --extra-noauth)
"$bench/run.sh" "$flag" "$name=$scheme://127.0.0.1:$port/api/admin/ping" --extra-pid "$name=$gw" "${args[@]}"
