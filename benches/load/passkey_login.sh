#!/usr/bin/env bash
# Issue 17: a browser sign-in with a passkey beside one with a password (CPU of the gateway with
# the embedded issuer per sign-in), headless Chromium with its virtual authenticator driving the
# account console of the dev realm (realms/myrealm-realm.json, user alice). The gateway runs
# with one worker thread, pinned to the last CPU, TLS with a self-signed dev certificate.
#
# usage: benches/load/passkey_login.sh [--sign-ins N] [--rounds R]
#   PORTCULLIS_BIN=path   the release binary (else cargo build --release)
set -euo pipefail
# shellcheck source=benches/load/common.sh
source "$(dirname "$0")/common.sh"
here=$LOAD_HERE; repo=$LOAD_REPO
n=40; rounds=3
parse_opts --sign-ins=n --rounds=rounds -- "$@"
release_bin
py=${PY_VENV:-$HOME/.cache/portcullis-venv/bin/python}
cpu=$(( $(nproc) - 1 ))
for ((r = 1; r <= rounds; r++)); do
  dir=$(mktemp -d)
  issuer_config "$dir" 28743 28782 28791 "sqlite://$dir/portcullis.db" "$repo/realms/myrealm-realm.json" \
    "frontend_url = \"https://localhost:28743/auth\"
[tls]
cert = \"$dir/gw.crt\"
key = \"$dir/gw.key\"
self_signed_if_missing = true"
  start_pinned "$dir" "$cpu" "$dir/gw.log"
  gw=$GW
  wait_ready http://127.0.0.1:28791/health/ready "$gw" "$dir/gw.log" 300
  echo "round $r, load average $(loadavg)"
  taskset -c 0 "$py" "$here/passkey_login.py" "https://localhost:28743/auth/realms/myrealm" alice password "$gw" "$n" \
    || { kill "$gw"; cat "$dir/gw.log" >&2; exit 1; }
  kill "$gw"; wait "$gw" 2>/dev/null || true
  rm -rf "$dir"
done
