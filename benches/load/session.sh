#!/usr/bin/env bash
# Browser sessions (issue 16): a request on a `session` route with a valid cookie beside the
# same request on a `jwt` route (a token of the same embedded issuer, same user, same RBAC),
# in one ../shared/bench/run.sh run with haproxy-tls and haproxy-jwt-tls; then the CPU of a
# whole sign-in (redirect, login page, login POST, callback) beside a password grant's.
# One gateway (TLS, one worker thread, pinned beside the peers) serves both routes, the
# embedded issuer (realm myrealm, user alice of /staff) and the sign-in.
#
# usage: benches/load/session.sh [--signin-seconds S] [--no-signin] [run.sh options...]
#   PORTCULLIS_BIN=path   the release binary (else cargo build --release)
# Both extras get the same two headers (the cookie and the bearer token), so the bytes on the
# wire are the same; each route reads only its own.
set -euo pipefail
source "$(dirname "$0")/features-lib.sh"
signin_s=10; signin=1; args=()
while (($#)); do
  case $1 in
    --signin-seconds) signin_s=$2; shift 2 ;;
    --no-signin) signin=0; shift ;;
    *) args+=("$1"); shift ;;
  esac
done
port=28543; mgmt=28590; internal=28581
origin="https://localhost:$port"
d=$FEAT_DIR/session
secret=bench-session-secret
# shellcheck source=benches/load/session-config.sh
source "$FEAT_HERE/session-config.sh"
write_session_config "$d" "$FEAT_REPO" "$WORK" "$port" "$mgmt" "$internal" "$ORIGIN_PORT" "$secret"
start_gateway session "$d" "$mgmt"
gw=${GW_PID[session]}
token_url="$origin/auth/realms/myrealm/protocol/openid-connect/token"
cookie=$(python3 "$FEAT_HERE/signin.py" cookie --base "$origin" --start /app/api/admin/ping --user alice --password password)
[[ $cookie == __Host-portcullis* ]] || die "no session cookie after sign-in"
token=$(curl -sk "$token_url" -d grant_type=password -d client_id=portcullis -d "client_secret=$secret" \
  -d username=alice -d password=password | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
log "cookie ${#cookie} bytes, token ${#token} bytes; load $(loadavg)"
"$FEAT_BENCH/run.sh" --only haproxy-tls,haproxy-jwt-tls,portcullis-jwt-tls,portcullis-session-tls \
  --extra "portcullis-jwt-tls=https://127.0.0.1:$port/api/admin/ping" --extra-pid "portcullis-jwt-tls=$gw" \
  --extra "portcullis-session-tls=https://127.0.0.1:$port/app/api/admin/ping" --extra-pid "portcullis-session-tls=$gw" \
  --header "Authorization: Bearer $token" --header "Cookie: $cookie" "${args[@]}"
if ((signin)); then
  log "sign-in vs password grant, ${signin_s}s each, sequential; load $(loadavg)"
  for round in 1 2; do
    printf 'round %s sign-in (redirect, login page, POST, callback): ' "$round"
    $(pin_client) python3 "$FEAT_HERE/signin.py" loop --base "$origin" --start /app/api/admin/ping \
      --user alice --password password --pid "$gw" --seconds "$signin_s"
    printf 'round %s password grant:                              ' "$round"
    $(pin_client) python3 "$FEAT_HERE/signin.py" password --token-url "$token_url" --client portcullis \
      --secret "$secret" --user alice --password password --pid "$gw" --seconds "$signin_s"
  done
fi
