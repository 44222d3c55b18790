# shellcheck shell=bash
# Shared by the feature benches (session.sh, mtls.sh, ratelimit.sh, grpc.sh): their own ports
# (28xxx, so they never meet gateway.sh's 18xxx or another helper's run), their own bench work
# dir, the release binary, starting a pinned gateway and stopping what was started. Loads go
# to 127.0.0.1 only; each is bounded by the caller.
#
# Sourcing it also sources common.sh (release_bin, loadavg) and ../shared/bench/lib.sh
# (read-only use of its helpers: render, start_origin, cpu_ticks, pin_server/pin_client,
# stop_all).

# shellcheck source=benches/load/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# The names the feature benches use; set here once, read there.
# shellcheck disable=SC2034
FEAT_HERE=$LOAD_HERE FEAT_REPO=$LOAD_REPO FEAT_BENCH=$LOAD_BENCH
[[ -x $FEAT_BENCH/run.sh ]] || { echo "bench harness not found at $FEAT_BENCH (set BENCH_DIR)"; exit 1; }
export BENCH_WORK=${BENCH_WORK:-/tmp/pt-feature-bench}
export BENCH_ORIGIN_PORT=${BENCH_ORIGIN_PORT:-28000}
export BENCH_NGINX_PROXY_PORT=${BENCH_NGINX_PROXY_PORT:-28001}
export BENCH_HAPROXY_PORT=${BENCH_HAPROXY_PORT:-28002}
export BENCH_HAPROXY_JWT_PORT=${BENCH_HAPROXY_JWT_PORT:-28003}
export BENCH_HAPROXY_TLS_PORT=${BENCH_HAPROXY_TLS_PORT:-28443}
export BENCH_HAPROXY_JWT_TLS_PORT=${BENCH_HAPROXY_JWT_TLS_PORT:-28444}
# shellcheck source=/dev/null
source "$FEAT_BENCH/lib.sh"

release_bin
PY_VENV=${PY_VENV:-$HOME/.cache/portcullis-venv/bin/python}
[[ -x $PY_VENV ]] || PY_VENV=python3

FEAT_DIR=$(mktemp -d)
# lib.sh's stop_all expects set +e (its wait returns the signal's status).
trap 'set +e; stop_all; rm -rf "$FEAT_DIR"' EXIT
trap 'exit 130' INT TERM
prepare_work

# start_gateway NAME DIR MGMT_PORT: runs DIR/portcullis.toml pinned beside the peers, one
# worker thread (the config says so), and waits for readiness. Sets GW_PID[NAME].
declare -A GW_PID=()
start_gateway() {
  local name=$1 dir=$2 mgmt=$3 pid i
  # shellcheck disable=SC2046
  (cd "$dir" && exec $(pin_server) "$PORTCULLIS_BIN" run --config portcullis.toml >/dev/null 2>"$dir/stderr.log") &
  pid=$!
  STARTED_PIDS+=("$pid"); GW_PID[$name]=$pid
  for ((i = 0; i < 300; i++)); do
    curl -sf "http://127.0.0.1:$mgmt/health/ready" >/dev/null && { log "started $name pid=$pid"; return 0; }
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  cat "$dir/stderr.log" >&2
  die "$name not ready"
}

# cpu_us PID...: utime+stime of the PIDs in µs.
cpu_us() { echo $(( $(cpu_ticks "$@") * 1000000 / $(getconf CLK_TCK) )); }
