# shellcheck shell=bash
# The browser-session bench configuration, shared by session.sh (load beside the peers) and
# callgrind.sh's `session` mode (instructions per request): one TLS gateway serving the
# embedded issuer (realm myrealm with the gateway's client, user alice of /staff), a `session`
# route /app and a `jwt` route /api (tokens of the same issuer) to the bench origin, the same
# RBAC rule on both. Heredocs inside stay unindented.
#
# write_session_config DIR REPO WORK PORT MGMT_PORT INTERNAL_PORT ORIGIN_PORT SECRET
write_session_config() {
local d=$1 repo=$2 work=$3 port=$4 mgmt=$5 internal=$6 origin_port=$7 secret=$8
local origin="https://localhost:$port"
mkdir -p "$d/routes" "$d/policies"
# The dev realm plus the gateway's client for this origin (groups in tokens, password grant
# allowed for the comparison), access tokens valid for the whole run.
python3 - "$repo/realms/myrealm-realm.json" "$d/realm.json" "$origin" "$secret" <<'PY'
import json, sys
src, out, origin, secret = sys.argv[1:]
r = json.load(open(src))
r["accessTokenLifespan"] = 7200
r["clients"] = [c for c in r["clients"] if c["clientId"] != "portcullis"] + [{
    "clientId": "portcullis", "enabled": True, "publicClient": False, "secret": secret,
    "redirectUris": [f"{origin}/.portcullis/callback"], "standardFlowEnabled": True,
    "directAccessGrantsEnabled": True,
    "attributes": {"pkce.code.challenge.method": "S256"},
    "protocolMappers": [{"name": "groups", "protocol": "openid-connect",
        "protocolMapper": "oidc-group-membership-mapper",
        "config": {"full.path": "true", "claim.name": "groups",
                   "id.token.claim": "true", "access.token.claim": "true"}}]}]
json.dump(r, open(out, "w"))
PY
head -c 32 /dev/urandom | base64 > "$d/session-keys"
chmod 600 "$d/session-keys"
cat > "$d/portcullis.toml" <<TOML
[listen]
public = "127.0.0.1:$port"
internal = "127.0.0.1:$internal"
management = "127.0.0.1:$mgmt"
[runtime]
worker_threads = 1
audit_log = false
[tls]
cert = "$work/tls/server.crt"
key = "$work/tls/server.key"
self_signed_if_missing = false
[routing]
watch = false
[[trust]]
issuer = "$origin/auth/realms/myrealm"
jwks_uri = "embedded"
audiences = ["portcullis"]
[issuer]
frontend_url = "$origin/auth"
database = "sqlite://$d/portcullis.db"
import = ["$d/realm.json"]
[session]
provider = "embedded:myrealm"
client_id = "portcullis"
client_secret = "$secret"
cookie_keys = "$d/session-keys"
TOML
cat > "$d/routes/bench.toml" <<TOML
[[route]]
name = "auth"
prefix = "/auth"
upstreams = ["embedded:issuer"]
[[route]]
name = "bench-session"
prefix = "/app"
upstreams = ["http://127.0.0.1:$origin_port"]
auth = "session"
[[route]]
name = "bench-jwt"
prefix = "/api"
upstreams = ["http://127.0.0.1:$origin_port"]
auth = "jwt"
TOML
cat > "$d/policies/bench.toml" <<TOML
[groups]
"/staff" = ["user"]
[roles.user]
permissions = ["bench:*"]
[[allow]]
route = "bench-session"
methods = ["*"]
permission = "bench:*"
[[allow]]
route = "bench-jwt"
methods = ["*"]
permission = "bench:*"
TOML
}
