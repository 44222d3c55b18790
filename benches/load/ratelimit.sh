#!/usr/bin/env bash
# Rate limits (issue 19) in one ../shared/bench/run.sh run: a public route without a limit
# beside the same route with a limit that never triggers (1,000,000/s + burst 1,000,000,
# key "ip"), on the local store (gateway L) and on Redis (gateway R, `[rate_limit] store`,
# its own redis-server started here on 127.0.0.1:26379, no persistence, pinned beside the
# gateways). Rows:
#   portcullis-open          gateway L, no limit
#   portcullis-limit-local   gateway L, the limit (local store)
#   portcullis-limit-redis   gateway R, the limit on Redis: the gateway's CPU
#   portcullis-limit-redis-all  the same route again, CPU of the gateway + redis-server
# One worker thread per gateway, plain HTTP, pinned beside the origin.
#
# usage: benches/load/ratelimit.sh [run.sh options...]
set -euo pipefail
source "$(dirname "$0")/features-lib.sh"
redis_port=26379
limit='rate_limit = { requests = 1000000, per_seconds = 1, burst = 1000000, key = "ip" }'
write_gw() {  # write_gw DIR PORT MGMT STORE
  local dir=$1 port=$2 mgmt=$3 store=$4
  mkdir -p "$dir/routes"
  cat > "$dir/portcullis.toml" <<TOML
[listen]
public = "127.0.0.1:$port"
management = "127.0.0.1:$mgmt"
[runtime]
worker_threads = 1
audit_log = false
[routing]
watch = false
[rate_limit]
store = "$store"
TOML
  cat > "$dir/routes/bench.toml" <<TOML
[[route]]
name = "open"
prefix = "/open"
strip_prefix = true
upstreams = ["http://127.0.0.1:$ORIGIN_PORT"]
[[route]]
name = "limited"
prefix = "/limited"
strip_prefix = true
upstreams = ["http://127.0.0.1:$ORIGIN_PORT"]
$limit
TOML
}
port_listening "$redis_port" && die "port $redis_port in use"
# shellcheck disable=SC2046
$(pin_server) redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
  --daemonize no --logfile "$FEAT_DIR/redis.log" &
redis=$!; STARTED_PIDS+=("$redis")
wait_port "$redis_port" "$redis" redis-server
write_gw "$FEAT_DIR/gw-local" 28520 28592 local
write_gw "$FEAT_DIR/gw-redis" 28521 28593 "redis://127.0.0.1:$redis_port"
start_gateway local "$FEAT_DIR/gw-local" 28592
start_gateway redis "$FEAT_DIR/gw-redis" 28593
l=${GW_PID[local]}; r=${GW_PID[redis]}
log "load $(loadavg)"
"$FEAT_BENCH/run.sh" --only portcullis-open,portcullis-limit-local,portcullis-limit-redis,portcullis-limit-redis-all \
  --extra-noauth "portcullis-open=http://127.0.0.1:28520/open/api/admin/ping" --extra-pid "portcullis-open=$l" \
  --extra-noauth "portcullis-limit-local=http://127.0.0.1:28520/limited/api/admin/ping" --extra-pid "portcullis-limit-local=$l" \
  --extra-noauth "portcullis-limit-redis=http://127.0.0.1:28521/limited/api/admin/ping" --extra-pid "portcullis-limit-redis=$r" \
  --extra-noauth "portcullis-limit-redis-all=http://127.0.0.1:28521/limited/api/admin/ping" --extra-pid "portcullis-limit-redis-all=$r,$redis" \
  "$@"
curl -s http://127.0.0.1:28593/metrics | grep -E '^portcullis_rate_limit(ed_total|_store_up|_store_errors_total)' || true
curl -s http://127.0.0.1:28592/metrics | grep -E '^portcullis_rate_limited_total' || true
