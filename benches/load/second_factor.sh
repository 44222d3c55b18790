#!/usr/bin/env bash
# Issue 17: a password grant with a TOTP second factor beside one without, on the same realm
# (../shared/bench/oidc-provider/realm.json's argon2 settings, brute force off so the loops
# never lock anyone out), the issuer pinned to the last CPU with one worker thread; rounds
# alternate the two kinds. Figures: benches/README.md, "Accounts: the second factor".
#
# usage: benches/load/second_factor.sh [--seconds S] [--rounds N] [--users N]
#   PORTCULLIS_BIN=path   the release binary (else cargo build --release)
set -euo pipefail
# shellcheck source=benches/load/common.sh
source "$(dirname "$0")/common.sh"
here=$LOAD_HERE; bench=$LOAD_BENCH
seconds=8; rounds=3; users=96
parse_opts --seconds=seconds --rounds=rounds --users=users -- "$@"
release_bin
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
issuer_config "$dir" 28720 28781 28790 "sqlite://$dir/portcullis.db" "$dir/realm.json"
start_pinned "$dir" "$cpu" "$dir/gw.log"
gw=$GW
wait_ready http://127.0.0.1:28790/health/ready "$gw" "$dir/gw.log" 600
echo "load average: $(loadavg)"
taskset -c 0 python3 "$here/second_factor.py" \
  --token-url "http://127.0.0.1:28720/auth/realms/bench2fa/protocol/openid-connect/token" \
  --client bench --secret "$secret" --password "$password" --users "$users" --pid "$gw" \
  --seconds "$seconds" --rounds "$rounds"
