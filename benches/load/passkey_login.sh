#!/usr/bin/env bash
# Issue 17: a browser sign-in with a passkey beside one with a password (CPU of the gateway with
# the embedded issuer per sign-in), headless Chromium with its virtual authenticator driving the
# account console of the dev realm (realms/myrealm-realm.json, user alice). The gateway runs
# with one worker thread, pinned to the last CPU, TLS with a self-signed dev certificate.
#
# usage: benches/load/passkey_login.sh [--sign-ins N] [--rounds R]
#   PORTCULLIS_BIN=path   the release binary (else cargo build --release)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
n=40; rounds=3
while (($#)); do
  case $1 in
    --sign-ins) n=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    *) echo "unknown argument $1"; exit 2 ;;
  esac
done
if [[ -z ${PORTCULLIS_BIN:-} ]]; then
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/portcullis-release}
  (cd "$repo" && cargo build --release --bin portcullis)
  PORTCULLIS_BIN=$CARGO_TARGET_DIR/release/portcullis
fi
py=${PY_VENV:-$HOME/.cache/portcullis-venv/bin/python}
cpu=$(( $(nproc) - 1 ))
for ((r = 1; r <= rounds; r++)); do
  dir=$(mktemp -d)
  mkdir -p "$dir/routes"
  cat > "$dir/portcullis.toml" <<TOML
[listen]
public = "127.0.0.1:28743"
internal = "127.0.0.1:28782"
management = "127.0.0.1:28791"
[runtime]
worker_threads = 1
audit_log = false
[tls]
cert = "$dir/gw.crt"
key = "$dir/gw.key"
self_signed_if_missing = true
[routing]
watch = false
[issuer]
frontend_url = "https://localhost:28743/auth"
database = "sqlite://$dir/portcullis.db"
import = ["$repo/realms/myrealm-realm.json"]
TOML
  printf '[[route]]\nname = "auth"\nprefix = "/auth"\nupstreams = ["embedded:issuer"]\n' > "$dir/routes/auth.toml"
  (cd "$dir" && exec taskset -c "$cpu" "$PORTCULLIS_BIN" run --config portcullis.toml >/dev/null 2>"$dir/gw.log") &
  gw=$!
  for _ in $(seq 300); do curl -sf http://127.0.0.1:28791/health/ready >/dev/null && break; sleep 0.1; done
  echo "round $r, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  taskset -c 0 "$py" "$here/passkey_login.py" "https://localhost:28743/auth/realms/myrealm" alice password "$gw" "$n" \
    || { kill "$gw"; cat "$dir/gw.log" >&2; exit 1; }
  kill "$gw"; wait "$gw" 2>/dev/null || true
  rm -rf "$dir"
done
