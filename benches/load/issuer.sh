#!/usr/bin/env bash
# Load-test the embedded issuer on loopback: client_credentials, password grants, discovery and
# JWKS, each for a fixed time with wrk, against the internal (backchannel) listener so the
# numbers are the issuer's own. The gateway runs pinned to one CPU with one worker thread.
#
# usage: benches/load/issuer.sh [seconds]   (default 15; needs wrk and curl)
# Record results in benches/README.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
secs=${1:-15}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/portcullis-target}
bin=$CARGO_TARGET_DIR/release/portcullis
command -v wrk >/dev/null || { echo "wrk is required"; exit 1; }
(cd "$repo" && cargo build --release --bin portcullis)
dir=$(mktemp -d)
trap 'kill $gw 2>/dev/null || true; wait $gw 2>/dev/null || true; rm -rf "$dir"' EXIT
mkdir -p "$dir/routes" "$dir/policies"
cp "$repo/realms/myrealm-realm.json" "$dir/realm.json"
cat > "$dir/portcullis.toml" <<TOML
[listen]
public = "127.0.0.1:18600"
internal = "127.0.0.1:18681"
management = "127.0.0.1:18690"
[runtime]
worker_threads = 1
audit_log = false
[routing]
watch = false
[issuer]
enabled = true
frontend_url = "http://127.0.0.1:18600/auth"
database = "sqlite://data/bench.db"
import = ["realm.json"]
TOML
cat > "$dir/routes/auth.toml" <<TOML
[[route]]
name = "auth"
prefix = "/auth"
upstreams = ["embedded:issuer"]
auth = "public"
TOML
cpu=$(( $(nproc) - 1 ))
(cd "$dir" && exec taskset -c "$cpu" "$bin" run --config portcullis.toml >/dev/null 2>"$dir/stderr.log") &
gw=$!
base=http://127.0.0.1:18681/auth/realms/myrealm
for _ in $(seq 300); do curl -sf "$base/.well-known/openid-configuration" >/dev/null && break; sleep 0.1; done
curl -sf "$base/.well-known/openid-configuration" >/dev/null || { cat "$dir/stderr.log"; exit 1; }

post() { # name body [basic]
  cat > "$dir/$1.lua" <<LUA
wrk.method = "POST"
wrk.body = "$2"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
LUA
}
post cc "grant_type=client_credentials&client_id=svc-reports&client_secret=svc-secret"
post pw "grant_type=password&client_id=myclient&client_secret=my-client-secret&username=bob&password=password"
run() { # label script url connections
  echo "== $1"
  wrk -t1 -c"$4" -d"${secs}s" ${2:+-s "$2"} "$3" | grep -E "Requests/sec|Latency|Non-2xx"
}
run "client_credentials (RS256)" "$dir/cc.lua" "$base/protocol/openid-connect/token" 8
run "password (argon2id m=7168,t=5,p=1)" "$dir/pw.lua" "$base/protocol/openid-connect/token" 4
run "discovery" "" "$base/.well-known/openid-configuration" 16
run "jwks" "" "$base/protocol/openid-connect/certs" 16
echo "RSS after load: $(ps -o rss= -p "$gw") KiB"
