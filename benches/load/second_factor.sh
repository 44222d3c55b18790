#!/usr/bin/env bash
# Issue 17: a password grant with a TOTP second factor beside one without, on the same realm
# (../shared/bench/oidc-provider/realm.json's argon2 settings, brute force off so the loops
# never lock anyone out), the issuer pinned to the last CPU with one worker thread; rounds
# alternate the two kinds. Figures: benches/README.md, "Accounts: the second factor".
#
# usage: benches/load/second_factor.sh [--seconds S] [--rounds N] [--users N]
#   PORTCULLIS_BIN=path   the release binary (else cargo build --release)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bench=${BENCH_DIR:-$repo/../shared/bench}
seconds=8; rounds=3; users=96
while (($#)); do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --users) users=$2; shift 2 ;;
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
gw=
trap '[[ -n $gw ]] && kill "$gw" 2>/dev/null; rm -rf "$dir"' EXIT
password=bench-Pw-2fa
secret=bench-2fa-secret
python3 - "$bench/oidc-provider/realm.json" "$dir/realm.json" "$users" "$password" "$secret" <<'PY'
import json, sys
src, out, n, password, secret = sys.argv[1:]
r = json.load(open(src))
r["realm"] = "bench2fa"
r["bruteForceProtected"] = False
r["otpPolicyPeriod"] = 1
r["clients"] = [{"clientId": "bench", "enabled": True, "publicClient": False, "secret": secret,
                 "directAccessGrantsEnabled": True, "standardFlowEnabled": False}]
otp = lambda i: {"type": "otp", "userLabel": "bench",
                 "secretData": json.dumps({"value": f"otp-secret-{i}"}),
                 "credentialData": json.dumps({"subType": "totp", "digits": 6, "counter": 0,
                                               "period": 1, "algorithm": "HmacSHA1"})}
pw = {"type": "password", "value": password}
r["users"] = [{"username": f"pw{i}", "enabled": True, "credentials": [pw]} for i in range(int(n))] + \
             [{"username": f"otp{i}", "enabled": True, "credentials": [pw, otp(i)]} for i in range(int(n))]
r.pop("groups", None)
json.dump(r, open(out, "w"))
PY
mkdir -p "$dir/routes"
cat > "$dir/portcullis.toml" <<TOML
[listen]
public = "127.0.0.1:28720"
internal = "127.0.0.1:28781"
management = "127.0.0.1:28790"
[runtime]
worker_threads = 1
audit_log = false
[routing]
watch = false
[issuer]
database = "sqlite://$dir/portcullis.db"
import = ["$dir/realm.json"]
TOML
printf '[[route]]\nname = "auth"\nprefix = "/auth"\nupstreams = ["embedded:issuer"]\n' > "$dir/routes/auth.toml"
(cd "$dir" && exec taskset -c "$cpu" "$PORTCULLIS_BIN" run --config portcullis.toml >/dev/null 2>"$dir/gw.log") &
gw=$!
for _ in $(seq 600); do curl -sf http://127.0.0.1:28790/health/ready >/dev/null && break; sleep 0.1; done
curl -sf http://127.0.0.1:28790/health/ready >/dev/null || { cat "$dir/gw.log" >&2; exit 1; }
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
taskset -c 0 python3 "$here/second_factor.py" \
  --token-url "http://127.0.0.1:28720/auth/realms/bench2fa/protocol/openid-connect/token" \
  --client bench --secret "$secret" --password "$password" --users "$users" --pid "$gw" \
  --seconds "$seconds" --rounds "$rounds"
